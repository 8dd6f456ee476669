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
from dataclasses import dataclass
from datetime import datetime
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
from .models import DealState, OrganisationDeal

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
    (its holder, or a retry, projects it) unless `wait` is set. The usual case costs four
    statements whatever the number of deals: lock the rows, read the streams, write the rows,
    and the organisation index when parties changed.
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


def _lock(deal_ids: list[UUID], *, wait: bool) -> dict[UUID, DealState]:
    if not deal_ids:
        return {}
    rows = (
        DealState.objects.select_for_update(skip_locked=not wait, of=("self",))
        .select_related("deal")  # the stream's version: a current deal's stream is not read
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
    now = timezone.now()
    written: list[DealState] = []
    parties: dict[UUID, set[tuple[str, str]]] = {}
    for deal_id, events in streams.items():
        row = rows[deal_id]
        if not events:
            outcomes[deal_id] = Projection(deal_id, Outcome.CURRENT, row.version)
            continue
        before = _parties(row.state)
        try:
            replayed = replay_events(events).state
        except Exception:
            # One deal that cannot be replayed (a bad upcaster, say) must not hold back the
            # other deals of its batch, as it would if the whole transaction failed and retried.
            log.exception("deal %s cannot be replayed", deal_id, extra={"deal_id": str(deal_id)})
            outcomes[deal_id] = Projection(deal_id, Outcome.FAILED, row.version)
            continue
        _assign(row, replayed, events[-1].version, now)
        written.append(row)
        after = _parties(row.state)
        if after != before:
            parties[deal_id] = after
        outcomes[deal_id] = Projection(deal_id, Outcome.PROJECTED, row.version)
    if written:
        bulk.write_states(written)
    if parties:
        bulk.replace_parties(parties)
    return outcomes


def _assign(row: DealState, deal: object | None, version: int, now: datetime) -> None:
    row.version = version
    row.projected_at = now
    if deal is None:
        row.state = None
        row.title = row.kind = row.stage = ""
        row.uncertain = False
        row.updated_at = None
        return
    state = deal_json(deal)
    row.state = state
    row.title = state["title"]
    row.kind = state["kind"]
    row.stage = state["stage"]
    row.uncertain = state["uncertain"]
    row.updated_at = deal.updated_at


def _parties(state: dict | None) -> set[tuple[str, str]]:
    if not state:
        return set()
    return {(party["organisation"], party["role"]) for party in state["parties"]}


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
        OrganisationDeal.objects.all().delete()
        _, counts = DealState.objects.all().delete()
    return counts.get(DealState._meta.label, 0)
