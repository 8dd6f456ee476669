"""What changed in a deal between two points in time, and which events explain each change.

A point is DOMAIN.md's `(as_of, known_at)`, either omitted meaning now (∞), as on `/state/`.
`diff(events, from_as_of=, from_known_at=, to_as_of=, to_known_at=)` replays both points with
`replay.replay_events` and compares their JSON (`reducer.deal_json`, without the bookkeeping
`version` and `updated_at`; `uncertain` is compared, clients see it).

Changes are JSON Patch operations (RFC 6902) on RFC 6901 JSON Pointer paths:
- `replace` a value that differs: `/stage`, `/joint_venture/shares/0/percent`, or `/joint_venture`
  as a whole where one side is null; the root `""` replaces the whole document where the deal
  had no state at one of the points (its JSON there is null);
- lists are compared item by item by index, and the items past the shorter list's end are an
  `add` (`/notes/3`, `old` null) or a `remove` (`new` null), removals from the last index down;
- an object key present on one side only (`/contracts/0/ordered_on/estimate`) is an `add` or a
  `remove` too.
Applied in order to the "from" JSON (`patched`), the changes give the "to" JSON.

Which events explain a change is decided by effect, never by event type. The diff walks from
one point to the other one step at a time, replaying the state after each step:
1. known_at: at the "from" as_of, from the earlier known_at to the later one, adding the events
   recorded in between one by one, in recording order (a retraction or correction there names
   the event it acts on);
2. as_of: at the "to" known_at, from the earlier as_of to the later one, date by date: on each
   date where the period of a fact in force starts (the facts of one date enter one by one, by
   version) or ends (the state stops being uncertain about it).
The walk passes through `(from as_of, to known_at)`. A path is explained by the events of every
step that moved its value, in each phase whose two ends differ at that path; a path that differs
between the two points differs between the ends of one phase at least, so some step of it moved
the path, and every change is explained by at least one event. (A counterfactual per event,
"replay without it", would miss causes that back each other up, such as a joint venture and a
contract that both make a deal `agreed`.) Lists compare by index, so a fact inserted before the
end of a list moves the items after it: it explains their paths too.

Cost: one replay and one `deal_json` per step. Beyond `max_steps` steps (200), or
`FOLD_BUDGET` events folded in all, consecutive steps are replayed together (`exact` is then
False): a path is credited to the group nearest the "to" point that moved it, to at most
`MAX_GROUPED` of its events whose `changed` fields in `replay.timeline_events` hold the path's
field. A diff then costs about `FOLD_BUDGET` folded events, one timeline, and a look-up per
changed path and group.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS

from .errors import DealNotFound
from .events import META_TYPES, period_end, upcast
from .reducer import Deal, EventLike, deal_json
from .replay import fact_statuses, load, replay_events, timeline_events

MAX_STEPS = 200
"""Steps of the walk replayed one by one; beyond, steps are grouped."""
MAX_GROUPED = 20
"""Events credited with a path in a group of steps, at most."""
FOLD_BUDGET = 400_000
"""Events folded by the walk at most (steps x events in the stream)."""
LEFT_OUT = frozenset({"version", "updated_at"})
"""Bookkeeping every event moves: not compared."""


@dataclass(frozen=True, slots=True)
class Point:
    """One end of a diff: the replay asked for, and its JSON as compared."""

    as_of: date | None
    known_at: datetime | None
    version: int
    """The last event applied (`ReplayedState.version`); 0 where the deal had no state."""
    state: dict[str, Any] | None
    """`deal_json` without `version` and `updated_at`; None where the deal had no state."""


@dataclass(frozen=True, slots=True)
class Named:
    """The event a retraction or correction acts on."""

    event_id: UUID
    version: int | None
    """None when the named event is not among the events given."""
    type: str | None


@dataclass(frozen=True, slots=True)
class Explanation:
    """An event that moved a changed path on the way from one point to the other."""

    event_id: UUID
    version: int
    type: str
    occurred: dict[str, Any] | None
    recorded_at: datetime
    names: Named | None


@dataclass(frozen=True, slots=True)
class Change:
    op: str
    """`add`, `remove` or `replace` (RFC 6902)."""
    path: str
    """RFC 6901 JSON Pointer into the deal's JSON; "" is the whole document."""
    old: Any
    """The value at "from"; None for an `add`."""
    new: Any
    """The value at "to"; None for a `remove`."""
    explained_by: tuple[Explanation, ...]
    """In version order."""


@dataclass(frozen=True, slots=True)
class Diff:
    deal_id: UUID | None
    from_: Point
    to: Point
    changes: tuple[Change, ...]
    exact: bool
    """True when every step of the walk was replayed on its own; False when some were grouped
    and their events credited by the timeline's `changed` fields."""


def deal_diff(
    deal_id: UUID,
    *,
    from_as_of: date | None = None,
    from_known_at: datetime | None = None,
    to_as_of: date | None = None,
    to_known_at: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> Diff:
    """`diff` of the deal's stream as stored now. Raises DealNotFound."""
    events = load(deal_id, using=using).events
    if not events:
        raise DealNotFound(deal_id)
    return diff(
        events,
        from_as_of=from_as_of,
        from_known_at=from_known_at,
        to_as_of=to_as_of,
        to_known_at=to_known_at,
        deal_id=deal_id,
    )


def diff(
    events: Iterable[EventLike],
    *,
    from_as_of: date | None = None,
    from_known_at: datetime | None = None,
    to_as_of: date | None = None,
    to_known_at: datetime | None = None,
    deal_id: UUID | None = None,
    max_steps: int = MAX_STEPS,
) -> Diff:
    """The paths that differ between the replays at the two points, each with the events that
    explain it (the module's docstring says how). Events in any order, of one stream."""
    events = sorted(events, key=attrgetter("version"))
    if deal_id is None and events:
        deal_id = getattr(events[0], "stream_id", None)
    start = replay_events(events, as_of=from_as_of, known_at=from_known_at, deal_id=deal_id)
    end = replay_events(events, as_of=to_as_of, known_at=to_known_at, deal_id=deal_id)
    old, new = _compared(start.state), _compared(end.state)
    found = compare(old, new)
    credited: dict[str, set[UUID]] = {path: set() for _, path, _, _ in found}
    exact = True
    if found:
        walks = _walks(events, from_as_of, from_known_at, to_as_of, to_known_at)
        steps = sum(len(walk.steps) for walk in walks)
        limit = max(1, min(max_steps, FOLD_BUDGET // max(1, len(events))))
        credit = _Credit(events)
        paths = [_Path.of(path) for path in credited]
        for walk in walks:
            # Each walk gets its share of the steps replayed one by one.
            share = max(1, math.floor(limit * len(walk.steps) / steps))
            exact &= _follow(walk, share, paths, credited, credit)
    by_id = {event.event_id: event for event in events}
    changes = tuple(
        Change(
            op=op,
            path=path,
            old=before,
            new=after,
            explained_by=tuple(
                _explanation(by_id[event_id], by_id)
                for event_id in sorted(credited[path], key=lambda i: by_id[i].version)
            ),
        )
        for op, path, before, after in found
    )
    return Diff(
        deal_id=deal_id,
        from_=Point(from_as_of, from_known_at, start.version, old),
        to=Point(to_as_of, to_known_at, end.version, new),
        changes=changes,
        exact=exact,
    )


# --- comparing JSON ----------------------------------------------------------------------------


def compare(old: Any, new: Any, path: str = "") -> list[tuple[str, str, Any, Any]]:
    """(op, path, old, new) for each difference between two JSON values, in document order;
    removals from a list from its last index down, so that the list applies in order."""
    found: list[tuple[str, str, Any, Any]] = []
    _compare(old, new, path, found)
    return found


def _compare(old: Any, new: Any, path: str, found: list[tuple[str, str, Any, Any]]) -> None:
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            here = f"{path}/{escape(key)}"
            if key in new:
                _compare(value, new[key], here, found)
            else:
                found.append(("remove", here, value, None))
        for key, value in new.items():
            if key not in old:
                found.append(("add", f"{path}/{escape(key)}", None, value))
    elif isinstance(old, list) and isinstance(new, list):
        common = min(len(old), len(new))
        for index in range(common):
            _compare(old[index], new[index], f"{path}/{index}", found)
        for index in range(common, len(new)):
            found.append(("add", f"{path}/{index}", None, new[index]))
        for index in reversed(range(common, len(old))):
            found.append(("remove", f"{path}/{index}", old[index], None))
    else:
        found.append(("replace", path, old, new))


def _same(old: Any, new: Any) -> bool:
    """JSON equality: `True` is not `1`, nor `1` `1.0`."""
    if type(old) is not type(new):
        return False
    if isinstance(old, dict):
        return old.keys() == new.keys() and all(_same(v, new[k]) for k, v in old.items())
    if isinstance(old, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    return bool(old == new)


def escape(key: str) -> str:
    """One reference token of a JSON Pointer (RFC 6901): `~` as `~0`, `/` as `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def tokens(path: str) -> list[str]:
    """The reference tokens of a JSON Pointer; [] for the whole document."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"not a JSON Pointer: {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


_MISSING = object()


def value_at(document: Any, path: str | Sequence[str]) -> Any:
    """The value a JSON Pointer (or its tokens) names in `document`, or `_MISSING` where it
    names nothing."""
    value = document
    for token in tokens(path) if isinstance(path, str) else path:
        if isinstance(value, dict):
            value = value.get(token, _MISSING)
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _compared(deal: Deal | None) -> dict[str, Any] | None:
    if deal is None:
        return None
    return {k: v for k, v in deal_json(deal).items() if k not in LEFT_OUT}


# --- the walk between the two points -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    events: tuple[EventLike, ...]
    """The events this step adds (a fact entering, a period ending, an event recorded)."""
    state: Callable[[], Deal | None]
    """The state once the step is taken."""


@dataclass(frozen=True, slots=True)
class _Walk:
    start: Callable[[], Deal | None]
    steps: list[_Step]
    ends_at_to: bool
    """The last step is on the side of the "to" point (else the walk runs towards "from")."""


def _walks(
    events: Sequence[EventLike],
    from_as_of: date | None,
    from_known_at: datetime | None,
    to_as_of: date | None,
    to_known_at: datetime | None,
) -> list[_Walk]:
    """The known_at walk at the "from" as_of, then the as_of walk at the "to" known_at."""
    walks = []
    if from_known_at != to_known_at:
        walks.append(_known_at_walk(events, from_as_of, from_known_at, to_known_at))
    if from_as_of != to_as_of:
        walks.append(_as_of_walk(events, to_known_at, from_as_of, to_as_of))
    return [walk for walk in walks if walk.steps]


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    """(earlier, later), None standing for "now" (after everything)."""
    if a is None or (b is not None and b < a):
        return b, a
    return a, b


def _known(events: Sequence[EventLike], known_at: datetime | None) -> list[EventLike]:
    return [e for e in events if known_at is None or e.recorded_at <= known_at]


def _known_at_walk(
    events: Sequence[EventLike], as_of: date | None, a: datetime | None, b: datetime | None
) -> _Walk:
    """From the earlier known_at to the later one, one recorded event at a time."""
    earlier, later = _ordered(a, b)
    assert earlier is not None
    base = _known(events, earlier)
    window = sorted(
        (e for e in _known(events, later) if e.recorded_at > earlier),
        key=lambda e: (e.recorded_at, e.version),
    )

    def state_of(count: int) -> Callable[[], Deal | None]:
        # Built when replayed: a list per step, built up front, would cost steps x events.
        return lambda: replay_events([*base, *window[:count]], as_of=as_of).state

    steps = [_Step((event,), state_of(index + 1)) for index, event in enumerate(window)]
    return _Walk(state_of(0), steps, ends_at_to=later == b)


def _as_of_walk(
    events: Sequence[EventLike], known_at: datetime | None, a: date | None, b: date | None
) -> _Walk:
    """From the earlier as_of to the later one, date by date.

    Only the facts in force at `known_at` count; a fact enters on the date its period starts
    (as corrected), and stops making the state uncertain on the date its period ends. Facts
    entering on one date enter one by one, by version.
    """
    earlier, later = _ordered(a, b)
    assert earlier is not None
    known = _known(events, known_at)
    starts: dict[date, list[EventLike]] = {}
    ends: dict[date, list[EventLike]] = {}
    for status in fact_statuses(known).values():
        event, occurred = status.event, status.occurred
        if event.type in META_TYPES or status.retracted_by is not None or not occurred:
            continue
        first = date.fromisoformat(occurred["date"])
        last = period_end(first, occurred["precision"])
        if earlier < first and (later is None or first <= later):
            starts.setdefault(first, []).append(event)
        if last > first and earlier < last and (later is None or last <= later):
            ends.setdefault(last, []).append(event)

    def state_of(as_of: date | None, left_out: frozenset[UUID]) -> Callable[[], Deal | None]:
        def replayed() -> Deal | None:
            chosen = [e for e in known if e.event_id not in left_out] if left_out else known
            return replay_events(chosen, as_of=as_of).state

        return replayed

    steps = []
    for day in sorted({*starts, *ends}):
        entering = sorted(starts.get(day, ()), key=attrgetter("version"))
        ids = [e.event_id for e in entering]
        if day in ends:
            steps.append(_Step(tuple(ends[day]), state_of(day, frozenset(ids))))
        for index, event in enumerate(entering):
            steps.append(_Step((event,), state_of(day, frozenset(ids[index + 1 :]))))
    if later is None and steps:
        # Now, after every date: the same state as on the last date, but for bookkeeping.
        steps.append(_Step((), state_of(None, frozenset())))
    return _Walk(state_of(earlier, frozenset()), steps, ends_at_to=later == b)


@dataclass(frozen=True, slots=True)
class _Path:
    """A changed path, split once: it is looked up in the state after every step."""

    path: str
    tokens: tuple[str, ...]

    @classmethod
    def of(cls, path: str) -> _Path:
        return cls(path, tuple(tokens(path)))

    @property
    def field(self) -> str:
        """The state's field it is in ("" for the whole document)."""
        return self.tokens[0] if self.tokens else ""

    def moved(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
        if not self.tokens:
            # The whole document: the deal comes to have a state, or stops having one.
            return (before is None) != (after is None)
        old, new = value_at(before, self.tokens), value_at(after, self.tokens)
        if old is _MISSING or new is _MISSING:
            return old is not new
        return not _same(old, new)


class _Credit:
    """Who to credit in a group of steps replayed together: the events whose timeline entry
    changed the path's field (the timeline is built once, on first need), at most
    `MAX_GROUPED` of them, those nearest the "to" point."""

    def __init__(self, events: Sequence[EventLike]) -> None:
        self.events = events
        self._changed: dict[UUID, frozenset[str]] | None = None
        self._members: dict[tuple[int, str], list[UUID]] = {}

    def changed(self) -> dict[UUID, frozenset[str]]:
        if self._changed is None:
            changed: dict[UUID, frozenset[str]] = {}
            before: Deal | None = None
            for entry in timeline_events(self.events):
                fields = set(entry.changed)
                if (before is None) != (entry.state_after is None):
                    fields.add("")
                changed[entry.event.event_id] = frozenset(fields)
                before = entry.state_after
            self._changed = changed
        return self._changed

    def members(self, group: Sequence[_Step], field: str, ends_at_to: bool) -> list[UUID]:
        key = (id(group[0]), field)  # steps live as long as the diff: their ids are unique
        if key not in self._members:
            events = [event for step in group for event in step.events]
            if field == "uncertain":
                # Uncertainty is about a period longer than a day around the as_of date.
                found = [
                    e.event_id
                    for e in events
                    if e.type not in META_TYPES
                    and (e.occurred or {}).get("precision", "day") != "day"
                ]
            else:
                changed = self.changed()
                found = [e.event_id for e in events if field in changed.get(e.event_id, ())]
            self._members[key] = found[-MAX_GROUPED:] if ends_at_to else found[:MAX_GROUPED]
        return self._members[key]


def _follow(
    walk: _Walk,
    limit: int,
    paths: Sequence[_Path],
    credited: dict[str, set[UUID]],
    credit: _Credit,
) -> bool:
    """Take the walk's steps, in at most `limit` replays, and credit the events of the steps
    that moved each path whose value differs between the walk's two ends. Steps replayed
    together: only the group nearest the "to" point that moved it, by the timeline's fields.
    True when every step was replayed on its own."""
    size = math.ceil(len(walk.steps) / limit)
    groups = [walk.steps[i : i + size] for i in range(0, len(walk.steps), size)]
    states = [_compared(walk.start())]
    states.extend(_compared(group[-1].state()) for group in groups)
    touched = [_fields_touched(states[g], states[g + 1]) for g in range(len(groups))]

    def moved(path: _Path, g: int) -> bool:
        return path.field in touched[g] and path.moved(states[g], states[g + 1])

    for path in paths:
        if not path.moved(states[0], states[-1]):
            continue
        if size == 1:
            for g in range(len(groups)):
                if moved(path, g):
                    credited[path.path].update(e.event_id for e in groups[g][0].events)
            continue
        nearest = reversed(range(len(groups))) if walk.ends_at_to else range(len(groups))
        g = next((g for g in nearest if moved(path, g)), None)
        if g is not None:
            credited[path.path].update(credit.members(groups[g], path.field, walk.ends_at_to))
    return size == 1


def _fields_touched(before: dict[str, Any] | None, after: dict[str, Any] | None) -> set[str]:
    """The state's fields that differ ("" too where the whole document does): a quick filter
    before looking each path up, which costs more on long lists. (Python's `==` takes `True`
    for `1`, which no field of the state mixes.)"""
    if before is None or after is None:
        return {"", *(before or {}), *(after or {})}
    return {name for name in (*before, *after) if before.get(name) != after.get(name)}


def _explanation(event: EventLike, by_id: dict[UUID, EventLike]) -> Explanation:
    names = None
    if event.type in META_TYPES:
        body, _ = upcast(event.type, event.schema_version, event.data)
        target_id = UUID(body["event_id"])
        target = by_id.get(target_id)
        names = Named(
            target_id,
            target.version if target is not None else None,
            target.type if target is not None else None,
        )
    return Explanation(
        event_id=event.event_id,
        version=event.version,
        type=event.type,
        occurred=event.occurred,
        recorded_at=event.recorded_at,
        names=names,
    )
