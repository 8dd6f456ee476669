"""Bitemporal replay: a deal's state as known at K about the date T, by DOMAIN.md's one rule.

`state(known_at=K, as_of=T)`:
1. take the stream's events with `recorded_at <= K` (default: all);
2. apply retractions and corrections among them to the facts they name;
3. keep the facts whose period *starts* on or before T (default: all);
4. fold them in order of (period start, version) with the pure reducer.

`DealOpened` is always folded first (a deal exists from its opening, whatever the dates of the
facts reported with it), and a deal whose opening is not kept at step 3 has no state.

`version` is the last event that affected the result: the highest version among the facts kept
at step 3 and the retractions and corrections (from step 1) of facts whose original or corrected
period starts on or before T. For the current state it is the stream's version. `updated_at`
is that event's `recorded_at`. The state is `uncertain` when a kept fact's period ends after T.

`replay_events` is pure and works on events already read; the projector calls it, so a
projection is literally a cached replay. `state` and `timeline` read the stream first (only its
events after those `cache` holds, when it holds them). `snapshot` and `fold_on` keep a stream's
replayed state for that cache, folding new events on where that is what a replay would do.
`fact_statuses` gives each event as step 2 leaves it (retracted by, corrected by, the data and
`occurred` in force), for pages that list a stream's events one by one.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS

from tracker.eventstore.store import RecordedEvent, read_stream

from .cache import FoldKey, Snapshot, streams
from .errors import DealNotFound
from .events import META_TYPES, period_end, schema_for, upcast
from .reducer import (
    BOOKKEEPING,
    STATE_FIELDS,
    Deal,
    EventLike,
    apply,
    changed_fields,
    delivery_value,
    fold,
    place_deliveries,
)


@dataclass(frozen=True, slots=True)
class ReplayedState:
    deal_id: UUID | None
    state: Deal | None
    as_of: date | None
    known_at: datetime | None
    version: int
    uncertain: bool


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    event: RecordedEvent
    state_after: Deal | None
    changed: list[str]


@dataclass(frozen=True, slots=True)
class _Corrected:
    """A fact as its corrections left it; the reducer reads it like an event."""

    event_id: UUID
    stream_id: UUID | None
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    occurred: dict[str, Any] | None
    recorded_at: datetime


def replay_events(
    events: Iterable[EventLike],
    *,
    as_of: date | None = None,
    known_at: datetime | None = None,
    deal_id: UUID | None = None,
) -> ReplayedState:
    """The state of one deal from its events (any order), by the four-step rule above."""
    events = list(events)
    if deal_id is None and events:
        deal_id = getattr(events[0], "stream_id", None)
    # 1. what was known at K
    if known_at is not None:
        events = [e for e in events if e.recorded_at <= known_at]
    # 2. retractions and corrections
    facts, meta, retracted, corrected_from = _resolve(events)
    # 3. what had happened by T
    limit = as_of.isoformat() if as_of is not None else None
    if limit is not None:
        # ISO dates compare as strings, which keeps a 10k-event replay cheap.
        facts = [f for f in facts if f.occurred is None or f.occurred["date"] <= limit]
    opening = [f for f in facts if f.type == "DealOpened"]
    if not opening:
        return ReplayedState(deal_id, None, as_of, known_at, 0, False)
    # 4. fold by (period start, version), the opening first
    facts.sort(key=fold_key)
    deal = fold(facts)
    assert deal is not None
    top = max(facts, key=_version)
    if meta:
        starts = {e.event_id: e.occurred["date"] if e.occurred else None for e in events}
        for event in meta:
            if event.version > top.version and _affects(event, limit, meta, corrected_from, starts):
                top = event
    uncertain = as_of is not None and any(_ends_after(f.occurred, as_of) for f in facts)
    deal = dataclasses.replace(
        deal,
        version=top.version,
        updated_at=top.recorded_at,
        uncertain=uncertain,
        retracted=frozenset(retracted),
    )
    return ReplayedState(deal_id, deal, as_of, known_at, top.version, uncertain)


def snapshot(events: Sequence[RecordedEvent], replayed: Deal | None) -> Snapshot:
    """`events` (a stream's first ones, in version order) with `replayed`, their replay's
    state, to cache and grow with `fold_on`."""
    last, named, history = _latest_fact(events)
    return Snapshot(tuple(events), replayed, last, named, history)


def fold_on(known: Snapshot, new: Sequence[RecordedEvent]) -> Snapshot | None:
    """`known` with `new` (the events after it) added, each folded on as the latest fact; None
    when one of them would not fold last in a replay, and the whole stream must be replayed.

    A fact that sorts after every fact already folded, under its original date and any date a
    correction gave it, and that no retraction or correction names, is folded last by step 4:
    `apply` on the state so far gives the replay's state.
    """
    if not new:
        return known
    deal, last = known.state, known.last_fact
    for event in new:
        key = fold_key(event)
        if (
            deal is None
            or event.type in META_TYPES
            or event.type == "DealOpened"
            or event.event_id in known.named
            or (last is not None and key <= last)
        ):
            return None
        deal = apply(deal, event)
        last = key
    history = {**known.history, **{event.event_id: event for event in new}}
    return Snapshot((*known.events, *new), deal, last, known.named, history)


def _latest_fact(
    events: Sequence[RecordedEvent],
) -> tuple[FoldKey | None, frozenset[UUID], dict[UUID, RecordedEvent]]:
    """The largest fold key of the facts among `events`, the events the retractions and
    corrections among them name, and `events` by id.

    A correction may move a fact to another date; the key of the fact at that date counts too,
    in force or not, so the result is never below the key of any fact a replay folds.
    """
    last: FoldKey | None = None
    named: set[UUID] = set()
    by_id: dict[UUID, RecordedEvent] = {}
    for event in events:
        by_id[event.event_id] = event
        if event.type not in META_TYPES:
            key = fold_key(event)
        else:
            body, _ = upcast(event.type, event.schema_version, event.data)
            named.add(UUID(body["event_id"]))
            target = by_id.get(UUID(body["event_id"]))
            moved = body.get("occurred") if event.type == "FactCorrected" else None
            if not moved or target is None or target.type in META_TYPES:
                continue
            key = _fold_key(target.type, moved, target.version)
        if last is None or key > last:
            last = key
    return last, frozenset(named), by_id


def to_the_millisecond(moment: datetime | None) -> datetime | None:
    """A `known_at` given to the millisecond covers its whole millisecond.

    Ledger times are shown to the millisecond: an event shown as recorded at 09:14:03.120Z may
    have been recorded at 09:14:03.120456, and a reader who passes that time back must see it.
    A time with sub-millisecond digits is taken as it is.
    """
    if moment is None or moment.microsecond % 1000:
        return moment
    return moment + timedelta(microseconds=999)


def state(
    deal_id: UUID,
    *,
    as_of: date | None = None,
    known_at: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> ReplayedState:
    """The deal's state as known at `known_at` about `as_of`. Raises DealNotFound."""
    events = _stored_events(deal_id, using)
    if not events:
        raise DealNotFound(deal_id)
    return replay_events(events, as_of=as_of, known_at=known_at, deal_id=deal_id)


def timeline(deal_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> list[TimelineEntry]:
    """Every event in version order, with the current state just after it and what it changed.

    "State after" is the state once that event (and every earlier one) was recorded.
    """
    events = _stored_events(deal_id, using)
    if not events:
        raise DealNotFound(deal_id)
    return timeline_events(events)


def load(deal_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> Snapshot:
    """The deal's stream as stored now and the state it replays to, in one query (two when
    the cached stream turns out to be stale), kept in the cache for the next call.

    The new events are folded onto the cached state, or the whole stream is replayed in memory
    when one reaches back.
    """
    cached, new = _read_known(deal_id, using)
    if cached is None:
        known = _replayed(deal_id, new)
    else:
        known = fold_on(cached, new) or _replayed(deal_id, [*cached.events, *new])
    streams.put(deal_id, known, using=using)
    return known


def cached_at(deal_id: UUID, version: int, *, using: str = DEFAULT_DB_ALIAS) -> Snapshot | None:
    """The stream as this process last read or wrote it, if that is at `version`; not checked
    against the store. A writer that decides on it names its last event's hash to the store
    (`append(expected_head=...)`), which refuses the append if the stream is not that."""
    cached = streams.get(deal_id, using=using)
    return cached if cached is not None and cached.version == version else None


def remember(
    deal_id: UUID,
    known: Snapshot,
    appended: Sequence[RecordedEvent],
    *,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Keep `known` grown by `appended`, events just stored and committed, so that the next
    writer finds the stream cached at its new head.

    Kept only when the store chained the first of them onto `known`'s last event, and when
    each folds on; otherwise nothing is kept, and the next `load` reads what it lacks.
    """
    if not known.events or not appended or appended[0].prev_hash != known.events[-1].hash:
        return
    grown = fold_on(known, appended)
    if grown is not None:
        # Another thread may have kept a later head meanwhile: an earlier one does not replace it.
        streams.put(deal_id, grown, using=using, unless_later=True)


def _replayed(deal_id: UUID, events: Sequence[RecordedEvent]) -> Snapshot:
    return snapshot(events, replay_events(events, deal_id=deal_id).state if events else None)


def _stored_events(deal_id: UUID, using: str) -> list[RecordedEvent]:
    cached, new = _read_known(deal_id, using)
    return new if cached is None else [*cached.events, *new]


def _read_known(deal_id: UUID, using: str) -> tuple[Snapshot | None, list[RecordedEvent]]:
    """The stream's cached snapshot and the events stored after it, in one query; (None, every
    event) when it is not cached, or its cached events are not the stored ones.

    With the stream cached at version v, only the events from v on are read: event v's hash
    covers every event before it (`cache` says why that is enough to trust them).
    """
    cached = streams.get(deal_id, using=using)
    if cached is not None:
        rows = read_stream(deal_id, cached.version - 1, using=using)
        if cached.continued_by(rows):
            return cached, rows[1:]
    return None, read_stream(deal_id, using=using)


def timeline_events(events: Iterable[EventLike]) -> list[TimelineEntry]:
    """`timeline` of events already read, in version order: entry i holds
    `replay_events(events[: i + 1]).state` and the fields it changed from entry i - 1.

    Linear in the events: each one costs O(log n) comparisons to place its fact, a copy of the
    one list of the state it changes, and a fold of at most eight events (of the party facts
    too, when it is one), where replaying each prefix was quadratic. `_Timeline` says why the
    smaller folds give the same state.
    """
    fold_ = _Timeline()
    entries: list[TimelineEntry] = []
    before: Deal | None = None
    for event in events:
        after = fold_.add(event)
        entries.append(TimelineEntry(event, after, _changed(before, after)))  # type: ignore[arg-type]
        before = after
    return entries


_COMPARED = [name for name in STATE_FIELDS if name not in BOOKKEEPING]


def _changed(before: Deal | None, after: Deal | None) -> list[str]:
    """`changed_fields(before, after)`, without comparing item by item what cannot be equal.

    A list the timeline did not touch is the same tuple (equal to itself), and tuples of
    different lengths differ; comparing them item by item cost more than the rest of a step.
    """
    if before is None or after is None:
        return changed_fields(before, after)
    changed = []
    for name in _COMPARED:
        old, new = getattr(before, name), getattr(after, name)
        if old is new:
            continue
        if (type(old) is tuple and type(new) is tuple and len(old) != len(new)) or old != new:
            changed.append(name)
    return changed


# Fact types whose step appends one item, built from the event alone, to one list of the state.
_APPENDS = {
    "ContractAwarded": "contracts",
    "BudgetAllocated": "budgets",
    "SupportAgreed": "support",
    "QuoteRecorded": "quotes",
    "NoteAdded": "notes",
}
# Fact types whose step moves the stage forward (`_Draft.advance` to a stage that is not final).
_ADVANCES = (
    "MouSigned",
    "JointVentureFormed",
    "ContractAwarded",
    "DeliveryRecorded",
    "BudgetAllocated",
    "SupportAgreed",
)
# Fact types whose step sets a field to a value from the event alone: the last one folded wins.
_LATEST = ("MouSigned", "JointVentureFormed", "StageChanged")
# Fact types whose step reads and writes the parties: folded in full whenever one changes.
_PARTIES = ("PartyAdded", "PartyRemoved")


class _Timeline:
    """The state after each event of a stream, kept up to date one event at a time.

    Replay folds the facts in force in fold-key order. Each step of the reducer touches few
    fields, and the state is assembled from smaller folds that give the same fields:
    - the opening's fields, `mou`, `joint_venture` and the stage come from folding the opening
      and at most eight facts: the last `StageChanged`, the last `MouSigned`, the last
      `JointVentureFormed`, and the last fact of each advancing type after that `StageChanged`.
      `mou` and `joint_venture` are the last such fact's; `StageChanged` sets the stage, and
      what follows only advances it to non-final stages, so which advancing facts follow (not
      how many, nor their order) decides it;
    - `parties` come from folding the opening and the party facts;
    - each list (`contracts`, `notes`, ...) holds one item per fact of its type in fold-key
      order, each item built by the reducer once, when the fact (or its correction) arrives;
    - each contract then counts the deliveries in force that name it: adding them up does not
      depend on their order (`reducer.place_deliveries`), so neither does the result;
    - `version` and `updated_at` are the last event's unless it is a retracted fact, as in
      `replay_events`; `retracted` names every event a retraction names.
    tests/deals/test_replay.py proves the result equal to replaying each prefix on random
    streams with late facts, retractions and corrections.
    """

    def __init__(self) -> None:
        self.seen: dict[UUID, EventLike] = {}
        self.naming: dict[UUID, list[EventLike]] = {}
        """Each event id: the retractions and corrections that name it, in version order."""
        self.targets: dict[UUID, UUID] = {}
        self.in_force: dict[UUID, EventLike] = {}
        """Each fact not retracted, as its corrections leave it."""
        self.keys: dict[str, list[tuple[int, str, int]]] = {}
        """Each fact type: the fold keys of its facts in force, sorted."""
        self.by_key: dict[tuple[int, str, int], EventLike] = {}
        self.items: dict[str, list[Any]] = {name: [] for name in _APPENDS.values()}
        self.lists: dict[str, tuple[Any, ...]] = {name: () for name in _APPENDS.values()}
        self.retracted: set[UUID] = set()
        self.retracted_frozen: frozenset[UUID] = frozenset()
        self.progress_inputs: tuple[EventLike, ...] = ()
        self.progress: Deal | None = None
        self.parties_dirty = True
        self.parties: tuple[Any, ...] = ()
        self.contracts_dirty = False
        self.contracts: tuple[Any, ...] = ()
        self.top: EventLike | None = None

    def add(self, event: EventLike) -> Deal | None:
        """The state once `event`, the next in version order, is recorded too."""
        self.seen[event.event_id] = event
        if event.type in META_TYPES:
            body, _ = upcast(event.type, event.schema_version, event.data)
            target = UUID(body["event_id"])
            self.targets[event.event_id] = target
            self.naming.setdefault(target, []).append(event)
            if event.type == "FactRetracted" and target not in self.retracted:
                self.retracted.add(target)
                self.retracted_frozen = frozenset(self.retracted)
            # What a retraction of a correction changes is the correction's own target.
            self._refresh(self.targets.get(target, target))
            self.top = event
        else:
            self._refresh(event.event_id)
            if event.event_id in self.in_force:
                self.top = event
        return self._state()

    def _refresh(self, event_id: UUID) -> None:
        """Put a fact back in force as its retractions and corrections now leave it."""
        event = self.seen.get(event_id)
        if event is None or event.type in META_TYPES:
            return
        named = self.naming.get(event_id, [])
        meta = named + [m for n in named for m in self.naming.get(n.event_id, [])]
        found = _amendments(meta)
        now: EventLike | None = None
        if event_id not in found.retracted:
            now = event
            if event_id in found.data or event_id in found.occurred:
                now = _correct(event, found.data.get(event_id), found.occurred.get(event_id))
        old = self.in_force.pop(event_id, None)
        if old is not None:
            self._place(old, remove=True)
        if now is not None:
            self.in_force[event_id] = now
            self._place(now, remove=False)

    def _place(self, fact: EventLike, *, remove: bool) -> None:
        key = fold_key(fact)
        keys = self.keys.setdefault(fact.type, [])
        index = bisect.bisect_left(keys, key)
        if remove:
            del keys[index]
            del self.by_key[key]
        else:
            keys.insert(index, key)
            self.by_key[key] = fact
        name = _APPENDS.get(fact.type)
        if name is not None:
            items = self.items[name]
            if remove:
                del items[index]
            else:
                items.insert(index, getattr(apply(_item_base(), fact), name)[-1])
            self.lists[name] = tuple(items)
        if fact.type in _PARTIES or fact.type == "DealOpened":
            self.parties_dirty = True
        if fact.type in ("ContractAwarded", "DeliveryRecorded"):
            self.contracts_dirty = True

    def _last(self, kind: str) -> EventLike | None:
        keys = self.keys.get(kind)
        return self.by_key[keys[-1]] if keys else None

    def _state(self) -> Deal | None:
        openings = [self.by_key[key] for key in self.keys.get("DealOpened", ())]
        if not openings or self.top is None:
            return None
        stage_set = self._last("StageChanged")
        chosen = {e.event_id: e for e in map(self._last, _LATEST) if e is not None}
        for kind in _ADVANCES:
            last = self._last(kind)
            if last is not None and (stage_set is None or fold_key(last) > fold_key(stage_set)):
                chosen[last.event_id] = last
        inputs = (*openings, *sorted(chosen.values(), key=fold_key))
        if inputs != self.progress_inputs:
            self.progress_inputs = inputs
            self.progress = fold(inputs)
        if self.parties_dirty:
            party_facts = sorted(
                (self.by_key[key] for kind in _PARTIES for key in self.keys.get(kind, ())),
                key=fold_key,
            )
            folded = fold([*openings, *party_facts])
            assert folded is not None
            self.parties = folded.parties
            self.parties_dirty = False
        if self.contracts_dirty:
            deliveries = [
                delivery_value(upcast(f.type, f.schema_version, f.data)[0], f.occurred)
                for f in (self.by_key[key] for key in self.keys.get("DeliveryRecorded", ()))
            ]
            self.contracts = place_deliveries(self.lists["contracts"], deliveries)
            self.contracts_dirty = False
        assert self.progress is not None
        return dataclasses.replace(
            self.progress,
            parties=self.parties,
            **{**self.lists, "contracts": self.contracts},
            version=self.top.version,
            updated_at=self.top.recorded_at,
            uncertain=False,
            retracted=self.retracted_frozen,
        )


@functools.cache
def _item_base() -> Deal:
    """An open deal to apply one list fact to, to read the item its step appends."""
    opening = _Corrected(
        event_id=UUID(int=0),
        stream_id=None,
        version=0,
        type="DealOpened",
        schema_version=schema_for("DealOpened").schema_version,
        data={"title": "", "kind": "other", "summary": "", "parties": []},
        occurred={"date": "2000-01-01", "precision": "day"},
        recorded_at=datetime(2000, 1, 1, tzinfo=UTC),
    )
    deal = fold([opening])
    assert deal is not None
    return deal


@dataclass(frozen=True, slots=True)
class FactStatus:
    """One event as the retractions and corrections among its stream leave it (step 2).

    `data` and `occurred` are those in force: the latest correction's, separately for each (new
    data brought up to its type's current schema version), else the event's own, upcast. For a
    retraction or a correction, `names` is the event it acts on.
    """

    event: EventLike
    data: dict[str, Any]
    occurred: dict[str, Any] | None
    retracted_by: int | None
    """The version of the retraction of this event, if it is retracted."""
    corrected_by: tuple[int, ...]
    """The versions of the corrections in force (not retracted) of this event, in order."""
    names: UUID | None


def fact_statuses(events: Iterable[EventLike]) -> dict[UUID, FactStatus]:
    """Each event by id, in the order given, with what the rule's step 2 does to it.

    The same rule `replay_events` folds by, for pages that show a stream's events one by one:
    retractions and corrections among `events` only (give the whole stream, or a part that holds
    the events its retractions and corrections name).
    """
    events = list(events)
    found = _amendments([e for e in events if e.type in META_TYPES])
    statuses: dict[UUID, FactStatus] = {}
    for event in events:
        key = event.event_id
        fact: EventLike = event
        if key in found.data or key in found.occurred:
            fact = _correct(event, found.data.get(key), found.occurred.get(key))
        data, _ = upcast(fact.type, fact.schema_version, fact.data)
        statuses[key] = FactStatus(
            event=event,
            data=data,
            occurred=fact.occurred,
            retracted_by=found.retracted.get(key),
            corrected_by=tuple(found.corrected_by.get(key, ())),
            names=found.targets.get(key),
        )
    return statuses


# --- steps -----------------------------------------------------------------------------------


def _resolve(
    events: Sequence[EventLike],
) -> tuple[list[EventLike], list[EventLike], set[UUID], dict[UUID, UUID]]:
    """Facts after retractions and corrections; the meta events; retracted ids; and, for each
    correction, the fact it targets."""
    meta = [e for e in events if e.type in META_TYPES]
    if not meta:
        return list(events), meta, set(), {}
    found = _amendments(meta)
    facts: list[EventLike] = []
    for event in events:
        if event.type in META_TYPES or event.event_id in found.retracted:
            continue
        if event.event_id in found.data or event.event_id in found.occurred:
            event = _correct(
                event, found.data.get(event.event_id), found.occurred.get(event.event_id)
            )
        facts.append(event)
    return facts, meta, set(found.retracted), found.targets


@dataclass(frozen=True, slots=True)
class _Amendments:
    """What the retractions and corrections among a stream's events do (step 2), by event id."""

    targets: dict[UUID, UUID]
    """Each retraction or correction: the event it names."""
    retracted: dict[UUID, int]
    """Each retracted event: the version of its retraction."""
    corrected_by: dict[UUID, list[int]]
    """Each corrected event: the versions of the corrections in force (not retracted)."""
    data: dict[UUID, tuple[dict[str, Any], int | None]]
    """Each event whose data was corrected: the latest new data and its schema version."""
    occurred: dict[UUID, dict[str, Any]]
    """Each event whose `occurred` was corrected: the latest new one."""


def _amendments(meta: Sequence[EventLike]) -> _Amendments:
    found = _Amendments({}, {}, {}, {}, {})
    bodies: dict[UUID, dict[str, Any]] = {}
    ordered = sorted(meta, key=_version)
    for event in ordered:
        bodies[event.event_id], _ = upcast(event.type, event.schema_version, event.data)
        found.targets[event.event_id] = UUID(bodies[event.event_id]["event_id"])
        if event.type == "FactRetracted":
            found.retracted.setdefault(found.targets[event.event_id], event.version)
    for event in ordered:
        if event.type != "FactCorrected" or event.event_id in found.retracted:
            continue
        data = bodies[event.event_id]
        target = found.targets[event.event_id]
        found.corrected_by.setdefault(target, []).append(event.version)
        # The latest correction wins, separately for data and for occurred.
        if data.get("data") is not None:
            found.data[target] = (data["data"], data.get("data_schema_version"))
        if data.get("occurred") is not None:
            found.occurred[target] = data["occurred"]
    return found


def _correct(
    event: EventLike,
    data: tuple[dict[str, Any], int | None] | None,
    occurred: dict[str, Any] | None,
) -> _Corrected:
    if data is not None:
        values, version = data
        schema_version = version or schema_for(event.type).schema_version
    else:
        values, schema_version = event.data, event.schema_version
    return _Corrected(
        event_id=event.event_id,
        stream_id=getattr(event, "stream_id", None),
        version=event.version,
        type=event.type,
        schema_version=schema_version,
        data=values,
        occurred=occurred if occurred is not None else event.occurred,
        recorded_at=event.recorded_at,
    )


def _affects(
    event: EventLike,
    limit: str | None,
    meta: list[EventLike],
    targets: dict[UUID, UUID],
    starts: dict[UUID, str | None],
) -> bool:
    """Whether a retraction or correction touched a fact of the period asked about."""
    if limit is None:
        return True
    target = targets[event.event_id]
    if target in targets:
        # A retracted correction: what it touched is the correction's own target.
        target = targets[target]
    original = starts.get(target)
    if original is None or original <= limit:
        return True
    for candidate in meta:
        if candidate.type == "FactCorrected" and targets[candidate.event_id] == target:
            occurred = candidate.data.get("occurred")
            if occurred and occurred["date"] <= limit:
                return True
    return False


def fold_key(event: EventLike) -> tuple[int, str, int]:
    """Where a fact sits in step 4's fold: the opening first, then (period start, version)."""
    return _fold_key(event.type, event.occurred, event.version)


def _fold_key(type_: str, occurred: dict[str, Any] | None, version: int) -> tuple[int, str, int]:
    start = occurred["date"] if occurred else ""
    return (0 if type_ == "DealOpened" else 1, start, version)


def _version(event: EventLike) -> int:
    return event.version


def _ends_after(occurred: dict[str, Any] | None, as_of: date) -> bool:
    if not occurred or occurred["precision"] == "day":
        return False
    return period_end(date.fromisoformat(occurred["date"]), occurred["precision"]) > as_of
