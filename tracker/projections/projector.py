"""The projector: keeps each deal's read model equal to the replay of its stream.

Projections catch up per stream. A projection locks the deals' rows with SKIP LOCKED, so two
workers never project one deal at once and never wait on each other; versions in a stream have
no gaps, so a row that records the version it reflects can never skip an event. There is no
global checkpoint and no global lock: any number of workers project different deals in
parallel. Deals are projected in batches, one transaction for many deals (the deals a burst of
appends dispatched together, or the oldest that are behind), so the round trips and the commit
are shared as load grows. The sweep finds streams ahead of their read model and heals lost
dispatches.

The new state is the full replay of the stream (`deals.replay.replay_events`), not a fold of
the new events onto the stored state: facts arrive out of business-date order and retractions
reach back, so only a replay in (period start, version) order is right in every case. A deal's
stream is short, and a batch reads every stream it projects in one query.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracker.deals.reducer import deal_json
from tracker.deals.replay import replay_events
from tracker.eventstore.models import Stream
from tracker.eventstore.store import read_streams

from . import bulk
from .models import (
    DealContract,
    DealDelivery,
    DealExternalId,
    DealState,
    DealText,
    OrganisationDeal,
)

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    PROJECTED = "projected"
    CURRENT = "current"
    BUSY = "busy"
    """Another worker holds the deal's row; it will see the same events, or a retry will."""
    FAILED = "failed"
    """Its replay raised: logged, left behind, and kept from failing the rest of its batch."""


@dataclass(frozen=True)
class Projection:
    deal_id: UUID
    outcome: Outcome
    version: int


class Left(enum.Enum):
    """What a catch-up left undone when it stopped."""

    NOTHING = "nothing"
    HELD = "held"
    """Only deals that other workers hold, which may have read their streams too early."""
    TIME = "time"
    """Its time budget ran out: the caller hands the rest on."""


BATCH = 200
"""Deals projected in one transaction: large enough to share its round trips and commit over
many deals, small enough that rows stay locked for milliseconds, not seconds."""


def project_deal(deal_id: UUID, *, force: bool = False, wait: bool = False) -> Projection:
    """Bring one deal's read models up to its stream's version. Safe to run twice or at once.

    Returns BUSY at once when another worker holds the deal, unless `wait` is set; `force`
    recomputes a deal that is already current.
    """
    return project_deals([deal_id], force=force, wait=wait)[0]


def project_deals(
    deal_ids: Sequence[UUID], *, force: bool = False, wait: bool = False
) -> list[Projection]:
    """Bring these deals' read models up to their streams' versions, in one transaction.

    One outcome per distinct deal, in the order given. A deal another worker holds is BUSY
    (its holder, or a retry, projects it) unless `wait` is set. The usual case costs three
    statements whatever the number of deals: lock the rows, read the streams, write the rows;
    plus a DELETE and an INSERT for each kind of row beside them (parties, contracts, delivery
    years, external ids, search text) that changed in any deal of the batch.
    """
    # Ids may come as text (task arguments, a caller's JSON): one form for the keys below.
    ids = list(dict.fromkeys(UUID(str(deal_id)) for deal_id in deal_ids))
    with transaction.atomic():
        rows = _lock(ids, wait=wait)
        missing = [deal_id for deal_id in ids if deal_id not in rows]
        streamless: set[UUID] = set()
        if missing:
            # New deals: their rows must exist before they can be locked.
            created = bulk.create_rows(missing)
            streamless = set(missing) - set(created)
            rows |= _lock(created, wait=wait)
        projected = _project_locked(rows, force=force)
    _log_projected(projected.values())
    return [
        projected.get(deal_id)
        or Projection(deal_id, Outcome.CURRENT if deal_id in streamless else Outcome.BUSY, 0)
        for deal_id in ids
    ]


def project_behind(limit: int = BATCH) -> list[Projection]:
    """Project up to `limit` deals whose read model is behind (or missing), oldest first.

    Rows other workers hold are skipped, not waited for, so workers running this at once take
    disjoint batches. Returns an outcome per deal taken: empty when none was left that was free.
    """
    with transaction.atomic():
        bulk.create_missing_rows(limit)
        locked = (
            DealState.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("deal")
            .only(*_READ)
            .filter(version__lt=F("deal__version"))
            .order_by("deal__updated_at")[:limit]
        )
        projected = _project_locked({row.deal_id: row for row in locked}, force=False)
    _log_projected(projected.values())
    return list(projected.values())


def catch_up_behind(budget_seconds: float) -> tuple[int, Left]:
    """`project_behind` batch after batch until none is left free, or the budget is spent;
    returns how many deals it projected and what it left."""
    deadline = time.monotonic() + budget_seconds
    projected = 0
    while done := _count_projected(project_behind(limit=BATCH)):
        # A batch with none projected: none free was behind, or only deals that cannot be
        # replayed (logged), which another batch would only take again.
        projected += done
        if time.monotonic() > deadline:
            return projected, Left.TIME
    return projected, Left.NOTHING


def _count_projected(results: Iterable[Projection]) -> int:
    return sum(result.outcome is Outcome.PROJECTED for result in results)


def _log_projected(results: Iterable[Projection]) -> None:
    """One line per batch naming each deal projected and its version (`id@version`), so that
    an operator, or a test, can tell which worker projected what."""
    projected = [r for r in results if r.outcome is Outcome.PROJECTED]
    if projected:
        log.info(
            "%s deal(s) projected: %s",
            len(projected),
            " ".join(f"{r.deal_id}@{r.version}" for r in projected),
            extra={"deal_id": str(projected[0].deal_id) if len(projected) == 1 else None},
        )


# What a projection reads of a locked row and its stream: the rest of the row is only
# written, and each model field loaded costs its conversion in every row of a batch.
_READ = ("deal__version", "version", "state")


def _lock(deal_ids: list[UUID], *, wait: bool) -> dict[UUID, DealState]:
    if not deal_ids:
        return {}
    rows = (
        DealState.objects.select_for_update(skip_locked=not wait, of=("self",))
        .select_related("deal")  # the stream's version: a current deal's stream is not read
        .only(*_READ)
        .filter(deal_id__in=deal_ids)
    )
    return {row.deal_id: row for row in rows}


def _project_locked(rows: dict[UUID, DealState], *, force: bool) -> dict[UUID, Projection]:
    """Replay each locked deal's stream and write every row that moved, in bulk."""
    outcomes = {
        deal_id: Projection(deal_id, Outcome.CURRENT, row.version)
        for deal_id, row in rows.items()
        if row.deal.version <= row.version and not force
    }
    streams = read_streams([deal_id for deal_id in rows if deal_id not in outcomes])
    batch = _Batch()
    for deal_id, events in streams.items():
        row = rows[deal_id]
        if not events:
            outcomes[deal_id] = Projection(deal_id, Outcome.CURRENT, row.version)
            continue
        try:
            replayed = replay_events(events).state
        except Exception:
            # One deal that cannot be replayed (a bad upcaster, say) must not hold back the
            # other deals of its batch, as it would if the whole transaction failed and retried.
            log.exception("deal %s cannot be replayed", deal_id, extra={"deal_id": str(deal_id)})
            outcomes[deal_id] = Projection(deal_id, Outcome.FAILED, row.version)
            continue
        state = None if replayed is None else deal_json(replayed)
        updated_at = None if replayed is None else replayed.updated_at
        batch.add(row, state, events[-1].version, updated_at, force=force)
        outcomes[deal_id] = Projection(deal_id, Outcome.PROJECTED, row.version)
    batch.write()
    return outcomes


def write_projections(
    states: Iterable[tuple[DealState, dict[str, Any] | None, int, datetime | None]],
) -> None:
    """Write each `(row, state, version, updated_at)` as its deal's projection, with the rows
    beside it, as the projector writes a replay: `state` is API.md's JSON of the deal (as
    `deal_json` gives it), `row` a locked or new DealState."""
    batch = _Batch()
    for row, state, version, updated_at in states:
        batch.add(row, state, version, updated_at, force=False)
    batch.write()


class _Batch:
    """The rows of one batch of projected deals, written together: one UPDATE of the deals'
    rows, and for each kind of row beside them, one DELETE and one INSERT for the deals whose
    rows of that kind moved (none for a kind where none did)."""

    def __init__(self) -> None:
        self.now = timezone.now()
        self.rows: list[DealState] = []
        self.moved: dict[str, dict[UUID, Any]] = {field.name: {} for field in fields(_Rows)}

    def add(
        self,
        row: DealState,
        state: dict[str, Any] | None,
        version: int,
        updated_at: datetime | None,
        *,
        force: bool,
    ) -> None:
        # The rows beside a deal's row match its stored state, except where a forced
        # projection trusts nothing stored, and where a state was sent back to version 0 (as
        # migration 0003 does, to fill the tables it added).
        before = None if force or (row.version == 0 and row.state) else _Rows.of(row.state)
        _assign(row, state, version, updated_at, self.now)
        self.rows.append(row)
        after = _Rows.of(state)
        for kind, by_deal in self.moved.items():
            rows = getattr(after, kind)
            if before is None or getattr(before, kind) != rows:
                by_deal[row.deal_id] = rows

    def write(self) -> None:
        if self.rows:
            bulk.write_states(self.rows)
        moved = self.moved
        bulk.replace_parties(
            {
                deal_id: {(UUID(organisation), role) for organisation, role in rows}
                for deal_id, rows in moved["parties"].items()
            }
        )
        bulk.replace_contracts(
            {deal_id: [_typed(row) for row in rows] for deal_id, rows in moved["contracts"].items()}
        )
        bulk.replace_deliveries(
            {deal_id: sorted(years) for deal_id, years in moved["deliveries"].items()}
        )
        bulk.replace_external_ids(
            {deal_id: sorted(keys) for deal_id, keys in moved["external_ids"].items()}
        )
        bulk.replace_texts(moved["text"])


def _assign(
    row: DealState,
    state: dict[str, Any] | None,
    version: int,
    updated_at: datetime | None,
    now: datetime,
) -> None:
    row.version = version
    row.projected_at = now
    row.state = state
    row.updated_at = updated_at
    if state is None:
        row.title = row.kind = row.stage = ""
        row.uncertain = False
        return
    row.title = state["title"]
    row.kind = state["kind"]
    row.stage = state["stage"]
    row.uncertain = state["uncertain"]


def _search_text(state: dict[str, Any]) -> str:
    """What `?search=` reads: the title, summary, each contract's item and weapon designation
    and description, and the notes, one to a line, in lower case."""
    parts = [state["title"], state["summary"]]
    for contract in state["contracts"]:
        weapon = contract.get("weapon") or {}
        parts += [contract["item"], weapon.get("designation"), weapon.get("description")]
    parts += [note["text"] for note in state["notes"]]
    return "\n".join(dict.fromkeys(part for part in parts if part)).lower()


@dataclass(frozen=True, slots=True)
class _Rows:
    """The rows a state gives its deal beside its DealState, as values of the state's JSON.
    Compared before and after a replay, so that rows that did not move (those of a deal with
    no contract, above all) cost no statement."""

    parties: frozenset[tuple[str, str]]
    contracts: tuple[tuple[Any, ...], ...]
    """(position, buyer, supplier, category, order year, value amount, value currency)."""
    deliveries: frozenset[int]
    """The years with a delivery, under any contract."""
    external_ids: frozenset[str]
    text: str
    """What `?search=` reads (DealText)."""

    @classmethod
    def of(cls, state: dict[str, Any] | None) -> _Rows:
        if not state:
            return _NO_ROWS
        # States projected before `external_ids`, `ordered_on`, `weapon` and `deliveries`
        # were in the reducer have none of them.
        contracts = state["contracts"]
        return cls(
            parties=frozenset((p["organisation"], p["role"]) for p in state["parties"]),
            contracts=tuple(_contract_row(n, c) for n, c in enumerate(contracts)),
            deliveries=frozenset(
                delivery["year"] for c in contracts for delivery in c.get("deliveries") or ()
            ),
            external_ids=frozenset(state.get("external_ids") or ()),
            text=_search_text(state),
        )


_NO_ROWS = _Rows(frozenset(), (), frozenset(), frozenset(), "")


def _contract_row(position: int, contract: dict[str, Any]) -> tuple[Any, ...]:
    value = contract.get("value")
    ordered_on = contract.get("ordered_on")
    return (
        position,
        contract["buyer"],
        contract["supplier"],
        ((contract.get("weapon") or {}).get("category") or "").lower(),
        int(ordered_on["date"][:4]) if ordered_on else None,
        value["amount"] if value else None,
        value["currency"] if value else "",
    )


def _typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A contract row with the database's types: ids as UUIDs, the amount a Decimal."""
    position, buyer, supplier, category, year, amount, currency = row
    amount = None if amount is None else Decimal(amount)
    return (position, UUID(buyer), UUID(supplier), category, year, amount, currency)


def deals_behind(limit: int = 1000, *, deal_id: UUID | None = None) -> list[UUID]:
    """Deals whose stream is ahead of their read model (or that have none yet); with
    `deal_id`, that deal if it is behind."""
    streams = Stream.objects.all() if deal_id is None else Stream.objects.filter(id=deal_id)
    return list(
        streams.alias(projected=Coalesce("dealstate__version", 0))
        .filter(version__gt=F("projected"))
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )


def projection_lag() -> int:
    """Events appended but not yet reflected in a read model, over all deals."""
    total = Stream.objects.aggregate(
        lag=Coalesce(Sum(F("version") - Coalesce("dealstate__version", 0)), 0)
    )["lag"]
    return int(total)


def reset() -> int:
    """Drop every read-model row; returns how many deals' rows went."""
    with transaction.atomic():
        for model in (OrganisationDeal, DealContract, DealDelivery, DealExternalId, DealText):
            model.objects.all().delete()  # one DELETE each, not the cascade's row by row
        _, counts = DealState.objects.all().delete()
    return counts.get(DealState._meta.label, 0)
