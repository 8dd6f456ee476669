"""What the back office's pages show of deals and events: names for ids, values as text,
event rows with their status from `deals.replay`, and the fields each event changed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from tracker.deals import history, replay
from tracker.deals.events import META_TYPES
from tracker.deals.models import Organisation
from tracker.deals.reducer import Deal, changed_fields, deal_json
from tracker.eventstore.store import RecordedEvent, read_stream

from .forms import Choice


def organisation_choices() -> list[Choice]:
    return [
        Choice(str(org.id), f"{org} · {org.country}")
        for org in Organisation.objects.order_by("name").only("id", "name", "short_name", "country")
    ]


def organisation_names() -> dict[str, str]:
    return {choice.value: choice.label.rsplit(" · ", 1)[0] for choice in organisation_choices()}


def names_at(state: Deal, at: datetime) -> dict[str, str]:
    """The organisations of a deal's state named as recorded at `at` (tracker.deals.history)."""
    found = history.organisations_in(deal_json(state), at=at)
    return {str(org_id): org.label for org_id, org in found.items()}


def humanise(value: Any, names: Mapping[str, str]) -> Any:
    """The value with organisation ids replaced by their names (for reading, never for storing)."""
    if isinstance(value, dict):
        return {key: humanise(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [humanise(item, names) for item in value]
    if isinstance(value, str) and value in names:
        return names[value]
    return value


def state_row(name: str, value: Any) -> tuple[str, str, bool]:
    """(label, text, whether the text spans several lines) for a table of state fields."""
    text = show(value)
    return name.replace("_", " "), text, "\n" in text


def show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        if not value:
            return "—"
        return json.dumps(value, indent=2, ensure_ascii=False)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def occurred_label(occurred: Mapping[str, Any] | None) -> str:
    if not occurred:
        return "—"
    day = date.fromisoformat(occurred["date"])
    if occurred["precision"] == "year":
        return f"{day.year} (year)"
    if occurred["precision"] == "month":
        return f"{day:%B %Y} (month)"
    return day.isoformat()


@dataclass
class EventRow:
    """One stored event as the deal pages show it, with what replay's rule did to it."""

    status: replay.FactStatus
    data: str
    occurred: str
    target_version: int | None = None

    @property
    def event(self) -> Any:
        return self.status.event

    @property
    def retracted_by(self) -> int | None:
        return self.status.retracted_by

    @property
    def corrected_by(self) -> tuple[int, ...]:
        return self.status.corrected_by

    @property
    def is_meta(self) -> bool:
        return self.event.type in META_TYPES

    @property
    def can_retract(self) -> bool:
        return not self.is_meta and self.event.type != "DealOpened" and self.retracted_by is None

    @property
    def can_correct(self) -> bool:
        return not self.is_meta and self.retracted_by is None


def event_rows(events: Sequence[RecordedEvent], names: Mapping[str, str]) -> list[EventRow]:
    """Events as recorded, with what later retractions and corrections did to them."""
    statuses = replay.fact_statuses(events)
    return [
        EventRow(
            status=status,
            data=show(humanise(status.event.data, names)),
            occurred=occurred_label(status.event.occurred),
            target_version=(
                statuses[status.names].event.version if status.names in statuses else None
            ),
        )
        for status in statuses.values()
    ]


def newer_events(deal_id: UUID, version: int, names: Mapping[str, str]) -> list[EventRow]:
    return event_rows(read_stream(deal_id, after_version=version), names)


@dataclass
class StateChange:
    field: str
    before: str
    after: str


def state_changes(
    before: Deal | None,
    after: Deal | None,
    names: Mapping[str, str],
    after_names: Mapping[str, str] | None = None,
) -> list[StateChange]:
    """The fields that differ, organisations named by `names` (by `after_names` after)."""
    old = humanise(deal_json(before), names) if before else {}
    new = humanise(deal_json(after), names if after_names is None else after_names) if after else {}
    return [
        StateChange(name.replace("_", " "), show(old.get(name)), show(new.get(name)))
        for name in changed_fields(before, after)
    ]
