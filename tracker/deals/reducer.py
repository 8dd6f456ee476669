"""The pure reducer: a deal's state folded from its events. No I/O, no clock, no Django.

`apply(deal, event)` is one step; `fold(events, deal)` is a loop over it. Both take the event
store's `RecordedEvent` or anything with the same attributes (`type`, `schema_version`, `data`,
`occurred`, `event_id`, `version`, `recorded_at`, and `stream_id` for `DealOpened`), upcast the
stored data to the current schema and trust it: events were validated against the catalogue when
they were written and the store never changes them.

The fold is order-sensitive, and the order is DOMAIN.md's: `replay.replay_events` removes
retracted facts, applies corrections, keeps the facts of the period asked about and folds them by
(period start, version). Folding raw stream order is therefore only right for streams without
retractions, corrections or late-reported facts; everything that needs a state calls replay.

A step is lenient by design: the strict rules (a party added once, MoU parties are parties, ...)
are checked by `rules.check` before an event is written. Replaying a subset of facts (an as-of
date before a party joined) must still give a state, not an error.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from datetime import date as Date
from decimal import Decimal
from typing import Annotated, Any, Protocol
from uuid import UUID

from pydantic import Field, PlainSerializer, TypeAdapter, WithJsonSchema

from .errors import UnknownEventType
from .events import (
    FINAL_STAGES,
    STAGES,
    TIV_MEANS,
    CountryCode,
    DealKind,
    DecimalString,
    Money,
    Occurred,
    Weapon,
    upcast,
)


class EventLike(Protocol):
    """What the reducer reads from an event: the store's RecordedEvent satisfies it."""

    @property
    def event_id(self) -> UUID: ...
    @property
    def version(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def occurred(self) -> dict[str, Any] | None: ...
    @property
    def recorded_at(self) -> datetime: ...


# --- the state -------------------------------------------------------------------------------
# These types are the one description of a deal's state: its JSON (`deal_json`) and its JSON
# Schema (`deal_json_schema`, the API's OpenAPI component) are derived from them by pydantic,
# which reads the `Annotated` metadata below. They stay plain frozen dataclasses, built without
# validation, so a long fold costs what it did.


def _timestamp(moment: datetime) -> str:
    # The event store's format (RFC 3339, UTC, microseconds), kept here to stay import-free.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Stage = Annotated[str, WithJsonSchema({"type": "string", "enum": list(STAGES)})]
Timestamp = Annotated[
    datetime,
    PlainSerializer(_timestamp, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


@dataclass(frozen=True, slots=True)
class Party:
    organisation: UUID
    role: str


@dataclass(frozen=True, slots=True)
class Mou:
    parties: tuple[UUID, ...]
    scope: str


@dataclass(frozen=True, slots=True)
class Holding:
    """One shareholder of a joint venture."""

    organisation: UUID
    percent: Annotated[DecimalString, Field(description="Shares of a venture sum to 100.")]


@dataclass(frozen=True, slots=True)
class JointVenture:
    venture: UUID
    shares: tuple[Holding, ...]
    headquarters_country: CountryCode
    scope: str


@dataclass(frozen=True, slots=True)
class DeliveryYear:
    """What was delivered under a contract in one year, the year's deliveries added up."""

    year: int
    quantity: int
    estimate: Annotated[bool, Field(description="A quantity is the source's estimate.")]
    year_estimate: Annotated[bool, Field(description="The year is the source's estimate.")]
    tiv: Annotated[DecimalString | None, Field(description=TIV_MEANS)]

    def plus(self, other: DeliveryYear) -> DeliveryYear:
        tivs = [t for t in (self.tiv, other.tiv) if t is not None]
        return DeliveryYear(
            year=self.year,
            quantity=self.quantity + other.quantity,
            estimate=self.estimate or other.estimate,
            year_estimate=self.year_estimate or other.year_estimate,
            tiv=sum(tivs, Decimal(0)) if tivs else None,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One `DeliveryRecorded`, as the reducer keeps it until its contract is in the state."""

    contract: UUID
    year: DeliveryYear


@dataclass(frozen=True, slots=True)
class Contract:
    id: Annotated[UUID, Field(description="The `ContractAwarded` event; deliveries name it.")]
    buyer: UUID
    supplier: UUID
    item: str
    quantity: int | None
    value: Money | None
    ordered_on: Annotated[Occurred, Field(description="The `occurred` of the award.")]
    quantity_estimate: bool
    weapon: Weapon | None
    tiv_unit: Annotated[DecimalString | None, Field(description=f"Per item. {TIV_MEANS}")]
    ordered: Annotated[int | None, Field(description="The quantity ordered, where known.")]
    delivered: Annotated[int, Field(description="Items delivered so far.")]
    deliveries: Annotated[tuple[DeliveryYear, ...], Field(description="By year, in order.")]

    def with_delivery(self, delivery: DeliveryYear) -> Contract:
        """The contract with one more delivery added into its year."""
        years = list(self.deliveries)
        index = bisect.bisect_left([d.year for d in years], delivery.year)
        if index < len(years) and years[index].year == delivery.year:
            years[index] = years[index].plus(delivery)
        else:
            years.insert(index, delivery)
        return dataclasses.replace(
            self, deliveries=tuple(years), delivered=self.delivered + delivery.quantity
        )


@dataclass(frozen=True, slots=True)
class BudgetEarmark:
    purpose: str
    amount: Money


@dataclass(frozen=True, slots=True)
class Budget:
    authority: UUID
    purpose: str
    amount: Money
    earmarks: tuple[BudgetEarmark, ...]


@dataclass(frozen=True, slots=True)
class Support:
    provider: UUID
    recipient: UUID
    programme: str
    scope: str


@dataclass(frozen=True, slots=True)
class Quote:
    speaker: str
    speaker_role: str
    organisation: UUID | None
    text: str


@dataclass(frozen=True, slots=True)
class Note:
    text: str


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal's state (API.md): retracted facts absent, corrected ones as corrected."""

    id: UUID
    title: str
    kind: DealKind
    stage: Stage
    summary: str
    parties: tuple[Party, ...]
    mou: Mou | None
    joint_venture: JointVenture | None
    contracts: tuple[Contract, ...]
    budgets: tuple[Budget, ...]
    support: tuple[Support, ...]
    quotes: tuple[Quote, ...]
    notes: tuple[Note, ...]
    uncertain: bool
    version: Annotated[int, Field(ge=1, description="Last event applied.")]
    opened_on: Annotated[Occurred, Field(description="The `occurred` of `DealOpened`.")]
    updated_at: Annotated[Timestamp, Field(description="Ledger time of the last event applied.")]
    external_ids: Annotated[
        tuple[str, ...], Field(description="Registers' keys for the deal, e.g. SIPRI:60123.")
    ] = ()
    # The ids of retracted events: internal, not part of the JSON.
    retracted: Annotated[frozenset[UUID], Field(exclude=True)] = frozenset()
    # Deliveries folded before their contract (dated before its award, or the award retracted
    # or left out by an as-of date): internal, held until the contract arrives.
    # Not compared: the same deliveries wait whatever order they were folded in.
    unplaced: Annotated[tuple[Delivery, ...], Field(exclude=True)] = dataclasses.field(
        default=(), compare=False
    )

    def party_ids(self) -> frozenset[UUID]:
        return frozenset(p.organisation for p in self.parties)


INTERNAL = frozenset({"retracted", "unplaced"})
STATE_FIELDS = tuple(f.name for f in fields(Deal) if f.name not in INTERNAL)
"""The fields of a deal's JSON, in its order."""
BOOKKEEPING = frozenset({"version", "updated_at", "uncertain", *INTERNAL})
"""Fields every event moves; the timeline's "changed" leaves them out."""
_RANK = {stage: rank for rank, stage in enumerate(STAGES)}


# --- folding ---------------------------------------------------------------------------------


class _Draft:
    """A mutable working copy used inside one fold, so a long fold stays linear in time."""

    __slots__ = (
        "budgets",
        "contracts",
        "external_ids",
        "id",
        "joint_venture",
        "kind",
        "mou",
        "notes",
        "opened_on",
        "parties",
        "quotes",
        "retracted",
        "stage",
        "summary",
        "support",
        "title",
        "uncertain",
        "unplaced",
        "updated_at",
        "version",
    )

    @classmethod
    def of(cls, deal: Deal) -> _Draft:
        draft = cls()
        for name in cls.__slots__:
            value = getattr(deal, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, frozenset):
                value = set(value)
            setattr(draft, name, value)
        return draft

    def freeze(self) -> Deal:
        return Deal(
            id=self.id,
            title=self.title,
            kind=self.kind,
            stage=self.stage,
            summary=self.summary,
            parties=tuple(self.parties),
            mou=self.mou,
            joint_venture=self.joint_venture,
            contracts=tuple(self.contracts),
            budgets=tuple(self.budgets),
            support=tuple(self.support),
            quotes=tuple(self.quotes),
            notes=tuple(self.notes),
            uncertain=self.uncertain,
            version=self.version,
            opened_on=self.opened_on,
            updated_at=self.updated_at,
            external_ids=tuple(self.external_ids),
            retracted=frozenset(self.retracted),
            unplaced=tuple(self.unplaced),
        )

    def advance(self, stage: str) -> None:
        """Move forward to `stage` unless already there, further on, or finished."""
        if self.stage not in FINAL_STAGES and _RANK[stage] > _RANK[self.stage]:
            self.stage = stage


def apply(deal: Deal | None, event: EventLike) -> Deal:
    """The deal after one more event. `deal` is None only for `DealOpened`."""
    result = fold((event,), deal)
    assert result is not None
    return result


def fold(events: Iterable[EventLike], deal: Deal | None = None) -> Deal | None:
    """Apply `events` in the order given, starting from `deal`. None if nothing opened a deal.

    Raises ValueError for an event other than DealOpened before the deal is open, and
    UnknownEventType for a type the catalogue does not hold.
    """
    draft = _Draft.of(deal) if deal is not None else None
    for event in events:
        draft = _step(draft, event)
    return draft.freeze() if draft is not None else None


def _step(draft: _Draft | None, event: EventLike) -> _Draft:
    kind = event.type
    handler = HANDLERS.get(kind)
    if handler is None:
        raise UnknownEventType(kind)
    data, _ = upcast(kind, event.schema_version, event.data)
    if kind == "DealOpened":
        if draft is not None:
            raise ValueError(f"event {event.event_id}: DealOpened on a deal already open")
        draft = _opened(event, data)
    elif draft is None:
        raise ValueError(f"event {event.event_id}: {kind} before the deal was opened")
    else:
        handler(draft, data, event)
    if event.version >= draft.version:
        draft.version = event.version
        draft.updated_at = event.recorded_at
    return draft


def _opened(event: EventLike, data: dict[str, Any]) -> _Draft:
    draft = _Draft()
    draft.id = getattr(event, "stream_id", None)
    draft.title = data["title"]
    draft.kind = data["kind"]
    draft.stage = "announced"
    draft.summary = data.get("summary", "")
    draft.parties = [Party(UUID(p["organisation"]), p["role"]) for p in data["parties"]]
    draft.mou = None
    draft.joint_venture = None
    draft.contracts = []
    draft.budgets = []
    draft.support = []
    draft.quotes = []
    draft.notes = []
    draft.uncertain = False
    draft.version = 0
    draft.opened_on = occurred_value(event.occurred)
    draft.updated_at = event.recorded_at
    draft.external_ids = tuple(data.get("external_ids", ()))
    draft.retracted = set()
    draft.unplaced = []
    return draft


def _deal_opened(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    raise AssertionError("handled by _step")  # pragma: no cover


def _party_added(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    organisation = UUID(data["organisation"])
    if all(p.organisation != organisation for p in draft.parties):
        draft.parties.append(Party(organisation, data["role"]))


def _party_removed(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    organisation = UUID(data["organisation"])
    draft.parties = [p for p in draft.parties if p.organisation != organisation]


def _mou_signed(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    draft.mou = Mou(tuple(UUID(p) for p in data["parties"]), data.get("scope", ""))
    draft.advance("mou_signed")


def _joint_venture_formed(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    draft.joint_venture = JointVenture(
        venture=UUID(data["venture"]),
        shares=tuple(
            Holding(UUID(s["organisation"]), Decimal(s["percent"])) for s in data["shares"]
        ),
        headquarters_country=data["headquarters_country"],
        scope=data.get("scope", ""),
    )
    draft.advance("agreed")


def _contract_awarded(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    weapon = data.get("weapon")
    tiv_unit = data.get("tiv_unit")
    contract = Contract(
        id=event.event_id,
        buyer=UUID(data["buyer"]),
        supplier=UUID(data["supplier"]),
        item=data["item"],
        quantity=data.get("quantity"),
        value=money_value(data["value"]) if data.get("value") else None,
        ordered_on=occurred_value(event.occurred),
        quantity_estimate=data.get("quantity_estimate", False),
        weapon=Weapon.model_construct(**weapon) if weapon else None,
        tiv_unit=Decimal(tiv_unit) if tiv_unit is not None else None,
        ordered=data.get("quantity"),
        delivered=0,
        deliveries=(),
    )
    # A delivery folded before its award (dated earlier) counts once the award is in.
    for held in [d for d in draft.unplaced if d.contract == contract.id]:
        contract = contract.with_delivery(held.year)
        draft.unplaced.remove(held)
    draft.contracts.append(contract)
    draft.advance("agreed")


def _delivery_recorded(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    delivery = delivery_value(data, event.occurred)
    for index, contract in enumerate(draft.contracts):
        if contract.id == delivery.contract:
            draft.contracts[index] = contract.with_delivery(delivery.year)
            break
    else:
        draft.unplaced.append(delivery)
    draft.advance("active")


def _budget_allocated(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    draft.budgets.append(
        Budget(
            authority=UUID(data["authority"]),
            purpose=data["purpose"],
            amount=money_value(data["amount"]),
            earmarks=tuple(
                BudgetEarmark(e["purpose"], money_value(e["amount"]))
                for e in data.get("earmarks", ())
            ),
        )
    )
    draft.advance("agreed")


def _support_agreed(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    draft.support.append(
        Support(
            provider=UUID(data["provider"]),
            recipient=UUID(data["recipient"]),
            programme=data["programme"],
            scope=data.get("scope", ""),
        )
    )
    draft.advance("agreed")


def _stage_changed(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    draft.stage = data["stage"]


def _quote_recorded(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    organisation = data.get("organisation")
    draft.quotes.append(
        Quote(
            speaker=data["speaker"],
            speaker_role=data.get("speaker_role", ""),
            organisation=UUID(organisation) if organisation else None,
            text=data["text"],
        )
    )


def _note_added(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    draft.notes.append(Note(data["text"]))


def _fact_retracted(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    # The retracted fact itself is left out by replay before folding; here only its id is kept.
    draft.retracted.add(UUID(data["event_id"]))


def _fact_corrected(draft: _Draft, data: dict[str, Any], event: EventLike) -> None:
    # Replay substitutes the corrected data before folding; nothing is left to do here.
    return


Handler = Callable[[_Draft, dict[str, Any], EventLike], None]
HANDLERS: dict[str, Handler] = {
    "DealOpened": _deal_opened,
    "PartyAdded": _party_added,
    "PartyRemoved": _party_removed,
    "MouSigned": _mou_signed,
    "JointVentureFormed": _joint_venture_formed,
    "ContractAwarded": _contract_awarded,
    "DeliveryRecorded": _delivery_recorded,
    "BudgetAllocated": _budget_allocated,
    "SupportAgreed": _support_agreed,
    "StageChanged": _stage_changed,
    "QuoteRecorded": _quote_recorded,
    "NoteAdded": _note_added,
    "FactRetracted": _fact_retracted,
    "FactCorrected": _fact_corrected,
}
"""One handler per event type. A new type registers its handler here beside its schema."""


def money_value(data: dict[str, str]) -> Money:
    # Stored money was validated on write; constructing without re-validation keeps folds fast.
    return Money.model_construct(amount=Decimal(data["amount"]), currency=data["currency"])


def occurred_value(data: dict[str, Any] | None) -> Occurred:
    if data is None:
        raise ValueError("an event without `occurred` cannot open a deal")
    return Occurred.model_construct(
        date=Date.fromisoformat(data["date"]),
        precision=data["precision"],
        estimate=data.get("estimate", False),
    )


def delivery_value(data: dict[str, Any], occurred: dict[str, Any] | None) -> Delivery:
    """A `DeliveryRecorded` as its contract counts it: in the year it `occurred`."""
    when = occurred_value(occurred)
    tiv = data.get("tiv")
    return Delivery(
        contract=UUID(data["contract"]),
        year=DeliveryYear(
            year=when.date.year,
            quantity=data["quantity"],
            estimate=data.get("quantity_estimate", False),
            year_estimate=when.estimate,
            tiv=Decimal(tiv) if tiv is not None else None,
        ),
    )


def place_deliveries(
    contracts: tuple[Contract, ...], deliveries: Iterable[Delivery]
) -> tuple[Contract, ...]:
    """The contracts with these deliveries added: what folding them gives, in any order."""
    by_contract: dict[UUID, list[DeliveryYear]] = {}
    for delivery in deliveries:
        by_contract.setdefault(delivery.contract, []).append(delivery.year)
    if not by_contract:
        return contracts
    placed = []
    for contract in contracts:
        for year in by_contract.get(contract.id, ()):
            contract = contract.with_delivery(year)
        placed.append(contract)
    return tuple(placed)


# --- comparing and serialising ---------------------------------------------------------------


def changed_fields(before: Deal | None, after: Deal | None) -> list[str]:
    """Names of the state fields that differ, leaving out version/updated_at/uncertain."""
    if after is None:
        return [] if before is None else ["state"]
    names = [n for n in STATE_FIELDS if n not in BOOKKEEPING]
    if before is None:
        return [n for n in names if getattr(after, n) not in (None, "", ())]
    return [n for n in names if getattr(before, n) != getattr(after, n)]


@functools.cache
def _adapter() -> TypeAdapter[Deal]:
    # Built on first use: pydantic takes some milliseconds, and most importers never serialise.
    return TypeAdapter(Deal)


def deal_json(deal: Deal) -> dict[str, Any]:
    """API.md's JSON of a deal's state: UUIDs and Decimals as strings, money as an object."""
    return _adapter().dump_python(deal, mode="json")


def deal_json_schema(ref_template: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of `deal_json`'s output; nested types in `$defs`."""
    return _adapter().json_schema(mode="serialization", ref_template=ref_template)
