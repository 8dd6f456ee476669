"""The projector: keeps each deal's read model equal to the replay of its stream.

Projections catch up per stream. `project_deal` locks the deal's row with SKIP LOCKED, so two
workers never project one deal at once and never wait on each other; versions in a stream have
no gaps, so a row that records the version it reflects can never skip an event. There is no
global checkpoint and no global lock: any number of workers project different deals in
parallel. The sweep finds streams ahead of their read model in one indexed query and heals
lost dispatches.

The new state is the full replay of the stream (`deals.replay.replay_events`), not a fold of
the new events onto the stored state: facts arrive out of business-date order and retractions
reach back, so only a replay in (period start, version) order is right in every case. A deal's
stream is short, so this costs one indexed read per projection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from tracker.deals.reducer import deal_json
from tracker.deals.replay import replay_events
from tracker.eventstore.models import Stream
from tracker.eventstore.store import read_stream, stream_version

from .models import DealState, OrganisationDeal


class Outcome(enum.StrEnum):
    PROJECTED = "projected"
    CURRENT = "current"
    BUSY = "busy"
    """Another worker holds the deal's row; it will see the same events, or a retry will."""


@dataclass(frozen=True)
class Projection:
    deal_id: UUID
    outcome: Outcome
    version: int


def project_deal(deal_id: UUID, *, force: bool = False, wait: bool = False) -> Projection:
    """Bring one deal's read models up to its stream's version. Safe to run twice or at once.

    Returns BUSY at once when another worker holds the deal, unless `wait` is set; `force`
    recomputes a deal that is already current. The usual case costs three statements: lock
    the row, read the stream, write the row.
    """
    with transaction.atomic():
        row = _lock(deal_id, wait=wait)
        if row is None:
            if stream_version(deal_id) == 0:
                return Projection(deal_id, Outcome.CURRENT, 0)
            # A new deal: its row must exist before it can be locked.
            DealState.objects.bulk_create([DealState(deal_id=deal_id)], ignore_conflicts=True)
            row = _lock(deal_id, wait=wait)
            if row is None:
                return Projection(deal_id, Outcome.BUSY, 0)
        events = read_stream(deal_id)
        if not events or (events[-1].version <= row.version and not force):
            return Projection(deal_id, Outcome.CURRENT, row.version)
        replayed = replay_events(events)
        _write(row, replayed.state, events[-1].version)
        return Projection(deal_id, Outcome.PROJECTED, row.version)


def _lock(deal_id: UUID, *, wait: bool) -> DealState | None:
    return (
        DealState.objects.select_for_update(skip_locked=not wait, of=("self",))
        .filter(deal_id=deal_id)
        .first()
    )


def _write(row: DealState, deal: object | None, version: int) -> None:
    before = _parties(row.state)
    row.version = version
    if deal is None:
        row.state = None
        row.title = row.kind = row.stage = ""
        row.uncertain = False
        row.updated_at = None
    else:
        state = deal_json(deal)
        row.state = state
        row.title = state["title"]
        row.kind = state["kind"]
        row.stage = state["stage"]
        row.uncertain = state["uncertain"]
        row.updated_at = deal.updated_at
    row.save()
    after = _parties(row.state)
    if after != before:
        OrganisationDeal.objects.filter(deal=row).delete()
        OrganisationDeal.objects.bulk_create(
            [
                OrganisationDeal(deal=row, organisation_id=organisation, role=role)
                for organisation, role in sorted(after)
            ]
        )


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
