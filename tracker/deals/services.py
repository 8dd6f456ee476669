"""Write side of the deal domain: every event is checked here, then appended.

Each service parses the request with the catalogue, checks every rule of DOMAIN.md by
dry-running the reducer on the current state plus the new events, checks that the
organisations named exist, and only then calls `eventstore.append` with `expected_version` and
the idempotency key. A broken rule raises `InvalidEvent` naming the field; `VersionConflict`
and `IdempotencyKeyReused` come from the event store unchanged.

After a successful append the services send `signals.events_recorded`: inside the caller's
transaction when there is one, else just after the append committed by itself; the projections
app listens and dispatches its task on commit (this app imports no Celery). A receiver that
fails is logged: the events are stored, and the caller is answered as they are.
"""

from __future__ import annotations

import dataclasses
from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from django.conf import settings
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from tracker.eventstore.errors import StaleHead, VersionConflict
from tracker.eventstore.models import Event, IdempotencyKey
from tracker.eventstore.store import (
    Appended,
    NewEvent,
    RecordedEvent,
    StreamAppend,
    append,
    append_many,
)

from . import replay, rules
from .cache import Snapshot
from .errors import DealNotFound, FieldError, InvalidEvent
from .events import (
    META_TYPES,
    EventData,
    FactCorrected,
    Occurred,
    Source,
    join_path,
    organisation_refs,
    parse_data,
    parse_occurred,
    parse_source,
    schema_for,
)
from .models import Organisation
from .reducer import Deal, apply, changed_fields
from .replay import fold_key, replay_events
from .signals import events_recorded


@dataclass(frozen=True, slots=True)
class ProposedEvent:
    """One event a client asks to append: its type, data, when it happened and its source."""

    type: str
    data: Mapping[str, Any]
    occurred: Occurred | Mapping[str, Any]
    source: Source | Mapping[str, Any]
    event_id: UUID | None = None
    """Chosen by a caller whose later events in the same batch name this one (an import's
    deliveries name their contract); made by the store otherwise."""


@dataclass(frozen=True, slots=True)
class Preview:
    """What appending would do: the current state, the state after, and the fields changed."""

    before: Deal | None
    after: Deal | None
    changed: list[str]
    version: int
    """The stream's version the preview was computed at (pass it as expected_version)."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    type: str
    data: EventData
    occurred: Occurred
    source: Source
    prefix: str
    data_at: str
    """Where the event's data sits in the caller's input: "data", "events[2].data", or ""."""
    event_id: UUID | None = None


def open_deal(
    *,
    title: str,
    kind: str,
    summary: str,
    parties: Sequence[Mapping[str, Any]],
    occurred: Occurred | Mapping[str, Any],
    source: Source | Mapping[str, Any],
    actor: str,
    deal_id: UUID | None = None,
    idempotency_key: str | None = None,
    fields_at: str = "data",
) -> Appended:
    """Open a new deal with its `DealOpened` event (version 1).

    Without `deal_id` a new id is made. With an idempotency key the id follows from the key,
    so requests repeating one key, even at the same moment, name the same deal and the event
    store answers all but the first as repeats of it. `fields_at` is where the caller's input
    holds the event's fields, for the paths in errors: "" where they are the whole body.
    """
    if deal_id is None and idempotency_key:
        # Keys stored before ids followed from keys point at a random id: look them up first.
        deal_id = _stream_of_key(idempotency_key) or uuid5(_KEYED_DEALS, idempotency_key)
    data = {"title": title, "kind": kind, "summary": summary, "parties": list(parties)}
    proposed = [ProposedEvent("DealOpened", data, occurred, source)]
    return _record(
        deal_id or uuid4(),
        proposed,
        0,
        actor,
        idempotency_key,
        batch=False,
        opens=True,
        fields_at=fields_at,
    )


def record_event(
    *,
    deal_id: UUID,
    event_type: str,
    data: Mapping[str, Any],
    occurred: Occurred | Mapping[str, Any],
    source: Source | Mapping[str, Any],
    expected_version: int,
    actor: str,
    idempotency_key: str | None = None,
    opens_deal: bool = False,
) -> Appended:
    """Append one event to a deal. Field names in errors: "data.shares", "occurred", ...

    Raises InvalidEvent (schema or rule), DealNotFound (no such deal, unless `opens_deal` is
    set and the event is its `DealOpened`), VersionConflict (the deal is not at
    expected_version) and IdempotencyKeyReused. A client never chooses a new deal's id: only
    callers that made the id themselves (open_deal, the admin, the demo data) open deals here.
    """
    proposed = [ProposedEvent(event_type, data, occurred, source)]
    return _record(
        deal_id, proposed, expected_version, actor, idempotency_key, batch=False, opens=opens_deal
    )


def record_events(
    *,
    deal_id: UUID,
    events: Sequence[ProposedEvent],
    expected_version: int,
    actor: str,
    idempotency_key: str | None = None,
    opens_deal: bool = False,
) -> Appended:
    """Append several events to a deal atomically: all of them or none.

    Each event is checked against the state left by the ones before it; field names in errors
    start with "events[i]." The errors, and `opens_deal`, are those of `record_event`.
    """
    return _record(
        deal_id, events, expected_version, actor, idempotency_key, batch=True, opens=opens_deal
    )


@dataclass(frozen=True, slots=True)
class DealChanges:
    """One deal's part of `record_many`: its new events, and its stream as the caller read it
    (its version is the expected version)."""

    deal_id: UUID
    events: Sequence[ProposedEvent]
    stream: Sequence[RecordedEvent]
    opens_deal: bool = False


@dataclass(frozen=True, slots=True)
class RecordedMany:
    appended: dict[UUID, Appended]
    """The deals appended to, in the order given."""
    refused: dict[UUID, InvalidEvent]
    """The deals whose events broke a rule: nothing of theirs was appended."""


def record_many(changes: Sequence[DealChanges], *, actor: str) -> RecordedMany:
    """Append to many deals in one transaction and one round trip (a register's import).

    Each deal's events are checked as `record_events` checks them, against the stream the
    caller read; a deal whose events break a rule is refused alone, with the errors
    `record_events` would raise. The others are appended together or not at all: if one of
    their streams has moved on since it was read, VersionConflict names it and nothing is
    appended. Raises DealNotFound for events to a deal that does not exist without
    `opens_deal`. Takes no idempotency key: a caller retries by reading the streams again.
    """
    if len({change.deal_id for change in changes}) != len(changes):
        raise ValueError("record_many takes each deal once")
    checked: dict[UUID, tuple[DealChanges, _Checked]] = {}
    refused: dict[UUID, InvalidEvent] = {}
    for change in changes:
        try:
            checked[change.deal_id] = (change, _check_read(change, actor))
        except InvalidEvent as invalid:
            refused[change.deal_id] = invalid
    existing = _existing_organisations(
        ref for _, found in checked.values() for ref in found.organisations
    )
    for deal_id, (_, found) in list(checked.items()):
        missing = _missing_organisations(found.organisations, existing)
        if missing:
            refused[deal_id] = InvalidEvent(missing)
            del checked[deal_id]
    appends = [
        StreamAppend(deal_id, found.events, len(change.stream))
        for deal_id, (change, found) in checked.items()
    ]
    with transaction.atomic():
        appended = append_many(appends, actor=actor)
        for item in appended:
            _tell(item)
    return RecordedMany({item.stream_id: item for item in appended}, refused)


def _check_read(change: DealChanges, actor: str) -> _Checked:
    """`change`'s events parsed and checked against its stream as read."""
    if not change.events:
        raise InvalidEvent.single("events", "at least one event is needed")
    parsed = _parse(change.events, batch=True)
    stream = change.stream
    if not stream and not (change.opens_deal and parsed[0].type == "DealOpened"):
        raise DealNotFound(change.deal_id)
    if [event.version for event in stream] != list(range(1, len(stream) + 1)):
        raise ValueError("DealChanges.stream must be the whole stream, in version order")
    replayed = replay_events(stream, deal_id=change.deal_id).state if stream else None
    known = replay.snapshot(stream, replayed)
    return _check(change.deal_id, known, parsed, actor=actor, organisations=False)


def preview_event(
    *,
    deal_id: UUID,
    event_type: str,
    data: Mapping[str, Any],
    occurred: Occurred | Mapping[str, Any],
    source: Source | Mapping[str, Any],
) -> Preview:
    """Dry-run one event against the deal's current state without appending anything.

    Raises what record_event would raise for it (InvalidEvent, DealNotFound).
    """
    parsed = _parse([ProposedEvent(event_type, data, occurred, source)], batch=False)
    known = replay.load(deal_id)
    version = known.version
    if not known.events and parsed[0].type != "DealOpened":
        raise DealNotFound(deal_id)
    checked = _check(deal_id, known, parsed, actor="")
    return Preview(
        checked.before, checked.after, changed_fields(checked.before, checked.after), version
    )


# --- steps -----------------------------------------------------------------------------------


def _record(
    deal_id: UUID,
    proposed: Sequence[ProposedEvent],
    expected_version: int,
    actor: str,
    idempotency_key: str | None,
    *,
    batch: bool,
    opens: bool,
    fields_at: str = "data",
) -> Appended:
    """Load, decide, store: parse every event, check it against the stream at
    `expected_version`, and append; the store refuses a stream that has moved on meanwhile."""
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise InvalidEvent.single("expected_version", "must be an integer")
    if expected_version < 0:
        raise InvalidEvent.single("expected_version", "must be 0 or more")
    if not proposed:
        raise InvalidEvent.single("events", "at least one event is needed")
    parsed = _parse(proposed, batch=batch, fields_at=fields_at)
    if idempotency_key is None:
        appended = _append_onto_cached(deal_id, parsed, expected_version, actor)
        if appended is not None:
            return appended
    existing: Sequence[RecordedEvent] = ()
    try:
        known = replay.load(deal_id)
        existing = known.events
        if not existing and not (opens and parsed[0].type == "DealOpened"):
            raise DealNotFound(deal_id)
        current = known.version
        if current != expected_version:
            # Fails fast, before any rule judges the events against a state the client did not
            # see; the store checks again under the stream's lock, where the race is decided.
            raise VersionConflict(
                stream_id=deal_id, expected_version=expected_version, current_version=current
            )
        checked = _check(deal_id, known, parsed, actor=actor)
    except (DealNotFound, VersionConflict, InvalidEvent):
        # A request whose key is stored moved the stream on (before, or since the read above):
        # this one is its repeat and gets its answer. Its events are made as the first call
        # made them (a correction with its target's full data), so the store recognises them;
        # the rules are not judged again, the state having moved on since.
        if _is_repeat(idempotency_key):
            history = {event.event_id: event for event in existing}
            repeated = [_normalise(p, history, _corrected_data(p, history)) for p in parsed]
            return _store(deal_id, _stored(repeated), expected_version, actor, idempotency_key)
        raise
    appended = _store(deal_id, checked.events, expected_version, actor, idempotency_key)
    _keep(deal_id, known, appended)
    return appended


def _append_onto_cached(
    deal_id: UUID, parsed: list[_Parsed], expected_version: int, actor: str
) -> Appended | None:
    """Decide on the stream as this process holds it, without reading it again, and append
    naming its last event; None when that cannot answer, and the caller reads the stream.

    Only the store can say that the copy is what is stored, and it says so under the
    stream's lock (`expected_head`). Whatever the copy leaves in doubt goes to the caller's
    path, which reads the stream and judges again: a stale copy (StaleHead), and a refusal by
    the rules (with a stream moved on since the copy, the client is owed 409 before 422), and
    a stream that is not stored at all (a copy read in a transaction that rolled back: the
    client is owed 404). Inside a caller's transaction the append may still roll back, so it
    is not kept; there the caller's path is taken.
    """
    if not _commits_by_itself():
        return None
    known = replay.cached_at(deal_id, expected_version)
    if known is None:
        return None
    try:
        checked = _check(deal_id, known, parsed, actor=actor)
        head = known.events[-1].hash
        appended = _store(deal_id, checked.events, expected_version, actor, None, head)
    except (InvalidEvent, StaleHead):
        return None
    except VersionConflict as conflict:
        if conflict.current_version == 0:
            return None
        raise
    _keep(deal_id, known, appended)
    return appended


def _commits_by_itself() -> bool:
    """Whether an append made now commits as it returns: no atomic block around it, and
    autocommit on (a transaction managed by hand may still roll back)."""
    connection = transaction.get_connection()
    return not connection.in_atomic_block and connection.get_autocommit()


def _keep(deal_id: UUID, known: Snapshot, appended: Appended) -> None:
    """Cache the stream as it stands after `appended`, unless a caller's transaction may still
    roll the append back."""
    if not appended.replayed and _commits_by_itself():
        replay.remember(deal_id, known, appended.events)


def _is_repeat(idempotency_key: str | None) -> bool:
    return bool(idempotency_key) and _stream_of_key(idempotency_key) is not None


def _parse(
    proposed: Sequence[ProposedEvent], *, batch: bool, fields_at: str = "data"
) -> list[_Parsed]:
    """Schema of every event, and `occurred` not in the future; all errors at once, each with
    the path of its field in the caller's input."""
    errors: list[FieldError] = []
    parsed: list[_Parsed] = []
    tolerance = timedelta(days=getattr(settings, "DEAL_FUTURE_TOLERANCE_DAYS", 1))
    latest = timezone.now().date() + tolerance
    for index, event in enumerate(proposed):
        prefix = f"events[{index}]." if batch else ""
        found: list[FieldError] = []
        data_at = prefix + fields_at
        data = _collect(found, parse_data, str(event.type), event.data, prefix=data_at)
        occurred = _collect(found, parse_occurred, event.occurred, prefix=prefix + "occurred")
        source = _collect(
            found, parse_source, event.source, prefix=prefix + "source", latest=latest
        )
        if occurred is not None and occurred.date > latest:
            found.append(_future(prefix + "occurred", occurred, latest))
        if isinstance(data, FactCorrected) and data.occurred and data.occurred.date > latest:
            found.append(_future(join_path(data_at, "occurred"), data.occurred, latest))
        errors.extend(found)
        if not found:
            parsed.append(
                _Parsed(event.type, data, occurred, source, prefix, data_at, event.event_id)
            )
    if errors:
        raise InvalidEvent(errors)
    return parsed


def _collect(found: list[FieldError], parse: Any, *args: Any, prefix: str, **options: Any) -> Any:
    try:
        return parse(*args, prefix=prefix, **options)
    except InvalidEvent as invalid:
        found.extend(invalid.errors)
        return None


def _future(field: str, occurred: Occurred, latest: Any) -> FieldError:
    return FieldError(
        field,
        f"{occurred.date.isoformat()} is in the future (the latest date accepted today is "
        f"{latest.isoformat()})",
    )


@dataclass(frozen=True, slots=True)
class _Checked:
    before: Deal | None
    after: Deal | None
    events: list[NewEvent]
    """The events as the store will take them, each encoded once."""
    drafts: list[RecordedEvent]
    """The same events as the reducer saw them, at the versions they will take."""
    organisations: list[tuple[str, UUID]]
    """The organisations the events name, each with the field that names it."""


def _check(
    deal_id: UUID,
    known: Snapshot,
    parsed: list[_Parsed],
    *,
    actor: str,
    organisations: bool = True,
) -> _Checked:
    """Check every rule and compute the state after the new events, with at most one replay.

    `organisations=False` leaves checking that the organisations named exist to the caller,
    which checks those of many deals in one query.

    The state before comes with the stream (`replay.load`).
    Each new event is checked against the state left by the ones before it, which folds it on
    as the latest fact (the reducer's `apply`: one step, not a replay). When every new fact
    sorts after the stream's in DOMAIN.md's (period start, version) order, that fold is the
    state after; when one reaches back (an earlier `occurred`, a retraction, a correction), the
    state after is one more replay with all the new events in place. A correction is checked
    against its fact's own rules too.
    """
    existing = known.events
    history: ChainMap[UUID, Any] = ChainMap({}, known.history)
    before = known.state
    # Past corrections count with the dates they moved facts to: a new fact dated before
    # one of those is folded before it by a replay, so it is not the latest fact.
    last = known.last_fact
    in_order = True
    state = before
    drafts: list[RecordedEvent] = []
    stored: list[NewEvent] = []
    refs: list[tuple[str, UUID]] = []
    now = timezone.now()
    version = known.version
    for item in parsed:
        errors = rules.check(state, item.type, item.data, history=history, prefix=item.prefix)
        corrected = None if errors else _corrected_data(item, history)
        if corrected is not None:
            errors = _check_correction(deal_id, [*existing, *drafts], item, corrected, history)
        if errors:
            raise InvalidEvent(errors)
        item = _normalise(item, history, corrected)
        refs.extend(_organisations(item, corrected))
        event = _stored([item])[0]
        version += 1
        draft = _draft(deal_id, event, version, now, actor)
        stored.append(event)
        drafts.append(draft)
        history[draft.event_id] = draft
        key = fold_key(draft)
        in_order = in_order and draft.type not in META_TYPES and (last is None or key > last)
        if draft.type not in META_TYPES:
            last = key if last is None else max(last, key)
        state = apply(state, draft)
    if organisations:
        _check_organisations(refs)
    after = state if in_order else replay_events([*existing, *drafts], deal_id=deal_id).state
    final = parsed[-1]
    field = final.prefix + ("data.event_id" if final.type in META_TYPES else "type")
    broken = rules.check_outcome(before, after, field=field)
    if broken:
        raise InvalidEvent(broken)
    return _Checked(before, after, stored, drafts, refs)


def _corrected_data(item: _Parsed, history: Mapping[UUID, Any]) -> EventData | None:
    """A correction's new data, parsed as its target's type (None for other events)."""
    data = item.data
    if not isinstance(data, FactCorrected) or data.data is None or data.event_id not in history:
        return None
    target_type = history[data.event_id].type
    return parse_data(target_type, data.data, prefix=item.prefix + "data.data")


def _check_correction(
    deal_id: UUID,
    events: list[RecordedEvent],
    item: _Parsed,
    corrected: EventData,
    history: Mapping[UUID, Any],
) -> list[FieldError]:
    """The corrected fact's own rules (shareholders are parties, ...), judged against the deal
    without the fact it replaces: the fact corrected may well name itself a party."""
    assert isinstance(item.data, FactCorrected)
    target = history[item.data.event_id]
    current = schema_for(target.type).schema_version
    version = item.data.data_schema_version
    if version not in (None, current):
        # The corrected data is read in the current schema; a client that says it wrote
        # another would have it stored under a version it did not mean.
        return [
            FieldError(
                item.prefix + "data.data_schema_version",
                f"must be {current}, the current schema version of {target.type}, or omitted",
            )
        ]
    without = [event for event in events if event.event_id != target.event_id]
    state = replay_events(without, deal_id=deal_id).state if without else None
    return rules.check(
        state,
        target.type,
        corrected,
        history={e.event_id: e for e in without},
        prefix=item.prefix + "data.",
        correcting=True,
        corrected_id=target.event_id,
    )


def _normalise(item: _Parsed, history: Mapping[UUID, Any], corrected: EventData | None) -> _Parsed:
    """Corrections store their target's full data in its current schema, with that version."""
    if corrected is None:
        return item
    assert isinstance(item.data, FactCorrected)
    target_type = history[item.data.event_id].type
    data = item.data.model_copy(
        update={
            "data": corrected.to_json(),
            "data_schema_version": schema_for(target_type).schema_version,
        }
    )
    return dataclasses.replace(item, data=data)


def _organisations(item: _Parsed, corrected: EventData | None) -> list[tuple[str, UUID]]:
    """The organisations an event names, each with the field that names it."""
    refs = [(join_path(item.data_at, path), org) for path, org in organisation_refs(item.data)]
    if corrected is not None:
        refs += [
            (join_path(item.data_at, f"data.{path}"), org)
            for path, org in organisation_refs(corrected)
        ]
    return refs


def _check_organisations(refs: list[tuple[str, UUID]]) -> None:
    missing = _missing_organisations(refs, _existing_organisations(refs))
    if missing:
        raise InvalidEvent(missing)


def _existing_organisations(refs: Iterable[tuple[str, UUID]]) -> set[UUID]:
    wanted = {org for _, org in refs}
    if not wanted:
        return set()
    return set(Organisation.objects.filter(id__in=wanted).values_list("id", flat=True))


def _missing_organisations(refs: list[tuple[str, UUID]], existing: set[UUID]) -> list[FieldError]:
    return [
        FieldError(path, f"no organisation with id {org}")
        for path, org in refs
        if org not in existing
    ]


def _stored(parsed: list[_Parsed]) -> list[NewEvent]:
    """The events as the store takes them: each part encoded to JSON once, here."""
    return [
        NewEvent(
            type=item.type,
            data=item.data.to_json(),
            occurred=item.occurred.to_json(),
            source=item.source.to_json(),
            schema_version=type(item.data).schema_version,
            **({"event_id": item.event_id} if item.event_id else {}),
        )
        for item in parsed
    ]


def _draft(
    deal_id: UUID, event: NewEvent, version: int, now: datetime, actor: str
) -> RecordedEvent:
    """The event as the reducer will see it once stored (no position or hash yet)."""
    return RecordedEvent(
        event_id=event.event_id,
        stream_id=deal_id,
        version=version,
        position=0,
        type=event.type,
        schema_version=event.schema_version,
        data=dict(event.data),
        occurred=dict(event.occurred) if event.occurred else None,
        source=dict(event.source) if event.source else None,
        actor=actor,
        recorded_at=now,
        prev_hash="",
        hash="",
    )


def _store(
    deal_id: UUID,
    events: list[NewEvent],
    expected_version: int,
    actor: str,
    idempotency_key: str | None,
    expected_head: str | None = None,
) -> Appended:
    """Append, then tell the projections (they act once the events have committed).

    The store raises VersionConflict when the stream is not at expected_version, and
    IdempotencyKeyReused; with a key already used for the same request it returns that first
    answer and nothing is appended or told.

    No transaction of its own: an append is atomic by itself, and outside a caller's
    transaction it is one statement in autocommit, one round trip, where a transaction around
    it cost four more (BEGIN, a savepoint and its release, COMMIT). The projections' receiver
    defers its work with `on_commit`, which runs at once after an append that committed by
    itself, and with the caller's commit inside a caller's transaction.
    """
    appended = append(
        deal_id,
        events,
        expected_version,
        actor=actor,
        idempotency_key=idempotency_key,
        expected_head=expected_head,
    )
    if not appended.replayed:
        _tell(appended)
    return appended


def _tell(appended: Appended) -> None:
    """Send `events_recorded` robustly: a receiver that fails is logged (by Django's
    `send_robust`), not raised, as the events are stored (or will be, with the caller's
    transaction) whatever a receiver does."""
    events_recorded.send_robust(
        sender=Deal,
        deal_id=appended.stream_id,
        version=appended.version,
        events=appended.events,
    )


_KEYED_DEALS = UUID("5b0f3c1e-8d4a-4f6e-9a57-3c2d1e0f9b8a")
"""Namespace of the deal ids that `open_deal` derives from idempotency keys."""


def _stream_of_key(key: str) -> UUID | None:
    return IdempotencyKey.objects.filter(key=key).values_list("stream_id", flat=True).first()


def organisation_in_use(organisation_id: UUID) -> bool:
    """True when any recorded fact names the organisation (its id anywhere in an event's data,
    a correction's included): those facts keep referring to it, so it must stay. Reads every
    event's data; for the rare deletion of reference data, not for a request's path."""
    return (
        Event.objects.annotate(text=Cast("data", TextField()))
        .filter(text__contains=str(organisation_id))
        .exists()
    )
