"""The auditor's timeline: one bar per event along the business-date axis, as recorded and as
corrected, with the as-of marker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tracker.deals.events import period_end
from tracker.eventstore.store import RecordedEvent

from .display import EventRow, event_rows, occurred_label


@dataclass
class TimelineBar:
    row: EventRow
    left: float
    width: float
    precision: str
    label: str
    original_left: float | None = None
    original_width: float | None = None
    recorded_at: datetime | None = None


@dataclass
class Axis:
    start: date
    end: date
    ticks: list[tuple[float, str]]
    marker: float | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def place(self, occurred: Mapping[str, Any]) -> tuple[float, float]:
        first = date.fromisoformat(occurred["date"])
        last = period_end(first, occurred["precision"])
        left = (first - self.start).days / self.days * 100
        width = ((last - first).days + 1) / self.days * 100
        return round(left, 3), round(width, 3)


_YEAR_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _axis(periods: Sequence[Mapping[str, Any]], as_of: date | None) -> Axis:
    starts = [date.fromisoformat(p["date"]) for p in periods]
    ends = [period_end(day, p["precision"]) for day, p in zip(starts, periods, strict=True)]
    if as_of:
        starts.append(as_of)
        ends.append(as_of)
    first = date(min(starts).year, 1, 1) if starts else date.today().replace(month=1, day=1)
    last = date(max(ends).year, 12, 31) if ends else first.replace(month=12, day=31)
    axis = Axis(first, last, [])
    years = last.year - first.year + 1
    # An auditor may ask about year 1 or 9999: label round years, about twenty at most.
    step = next(step for step in _YEAR_STEPS if years / step <= 20)
    for year in range(first.year, last.year + 1):
        if years <= 3:
            for month in range(1, 13):
                day = date(year, month, 1)
                left = (day - first).days / axis.days * 100
                label = f"{day:%b}" if month > 1 else str(year)
                axis.ticks.append((round(left, 3), label))
        elif year == first.year or year % step == 0:
            left = (date(year, 1, 1) - first).days / axis.days * 100
            axis.ticks.append((round(left, 3), str(year)))
    if as_of:
        axis.marker = round(((as_of - first).days + 0.5) / axis.days * 100, 3)
    return axis


def timeline_bars(
    events: Sequence[RecordedEvent], names: Mapping[str, str], as_of: date | None
) -> tuple[Axis, list[TimelineBar]]:
    """One bar per event along the `occurred` axis: a tick for a day, a span for a month or year."""
    rows = event_rows(events, names)
    # The axis spans the periods as recorded and as corrected (the bars and their ghosts).
    periods = [e.occurred for e in events if e.occurred]
    periods += [row.status.occurred for row in rows if row.status.occurred]
    axis = _axis(periods, as_of)
    bars = []
    for row in rows:
        event = row.event
        shown = row.status.occurred
        if not shown:
            continue
        left, width = axis.place(shown)
        bar = TimelineBar(
            row=row,
            left=left,
            width=width,
            precision=shown["precision"],
            label=occurred_label(shown),
            recorded_at=event.recorded_at,
        )
        if shown != event.occurred and event.occurred:
            bar.original_left, bar.original_width = axis.place(event.occurred)
        bars.append(bar)
    return axis, bars


PICKS = {
    "known_at": "as known when each was recorded (known at)",
    "as_of": "as of when each happened (as of)",
    "both": "both: as known when recorded, as of when it happened",
}
"""What an event picked on the timeline stands for, as a point to compare."""


def picked_point(row: EventRow, by: str) -> tuple[date | None, datetime | None]:
    """(as_of, known_at) of an event picked on the timeline: its `recorded_at` as known_at,
    the start of its period (as corrected) as as_of, or both (`by`, a key of PICKS)."""
    occurred = row.status.occurred
    as_of = date.fromisoformat(occurred["date"]) if by != "known_at" and occurred else None
    known_at = row.event.recorded_at if by != "as_of" else None
    return as_of, known_at
