"""Write side of the deal domain: every event is checked here, then appended.

Each service parses the request with the catalogue, checks every rule of DOMAIN.md by
dry-running the reducer on the current state plus the new events, checks that the
organisations named exist, and only then calls `eventstore.append` with `expected_version` and
the idempotency key. A broken rule raises `InvalidEvent` naming the field; `VersionConflict`
and `IdempotencyKeyReused` come from the event store unchanged.

After a successful append the services send `signals.events_recorded` inside the transaction;
the projections app listens and dispatches its task on commit (this app imports no Celery).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tracker.eventstore.errors import UnstorableValue, VersionConflict
from tracker.eventstore.models import IdempotencyKey
from tracker.eventstore.store import Appended, NewEvent, RecordedEvent, append, read_stream

from . import rules
from .errors import DealNotFound, FieldError, InvalidEvent
from .events import (
    EventData,
    FactCorrected,
    Occurred,
    Source,
    organisation_refs,
    parse_data,
    parse_occurred,
    parse_source,
    schema_for,
)
from .models import Organisation
from .reducer import Deal, changed_fields
from .replay import replay_events
from .signals import events_recorded


@dataclass(frozen=True, slots=True)
class ProposedEvent:
    """One event a client asks to append: its type, data, when it happened and its source."""

    type: str
    data: Mapping[str, Any]
    occurred: Occurred | Mapping[str, Any]
    source: Source | Mapping[str, Any]


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
) -> Appended:
    """Open a new deal with its `DealOpened` event (version 1).

    Without `deal_id` a new id is made. With an idempotency key the id follows from the key,
    so requests repeating one key, even at the same moment, name the same deal and the event
    store answers all but the first as repeats of it.
    """
    if deal_id is None and idempotency_key:
        # Keys stored before ids followed from keys point at a random id: look them up first.
        deal_id = _stream_of_key(idempotency_key) or uuid5(_KEYED_DEALS, idempotency_key)
    data = {"title": title, "kind": kind, "summary": summary, "parties": list(parties)}
    return record_event(
        deal_id=deal_id or uuid4(),
        event_type="DealOpened",
        data=data,
        occurred=occurred,
        source=source,
        expected_version=0,
        actor=actor,
        idempotency_key=idempotency_key,
        opens_deal=True,
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
    existing = read_stream(deal_id)
    version = existing[-1].version if existing else 0
    before, after, _ = _dry_run(deal_id, existing, parsed, actor="")
    return Preview(before, after, changed_fields(before, after), version)


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
) -> Appended:
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise InvalidEvent.single("expected_version", "must be an integer")
    if expected_version < 0:
        raise InvalidEvent.single("expected_version", "must be 0 or more")
    if not proposed:
        raise InvalidEvent.single("events", "at least one event is needed")
    parsed = _parse(proposed, batch=batch)
    if _is_repeat(idempotency_key):
        return _repeat(deal_id, parsed, expected_version, actor, idempotency_key, batch=batch)
    try:
        existing = read_stream(deal_id)
        current = existing[-1].version if existing else 0
        if not existing and not (opens and parsed[0].type == "DealOpened"):
            raise DealNotFound(deal_id)
        if current != expected_version:
            raise VersionConflict(
                stream_id=deal_id, expected_version=expected_version, current_version=current
            )
        _, _, checked = _dry_run(deal_id, existing, parsed, actor=actor)
    except (DealNotFound, VersionConflict, InvalidEvent):
        # A request with the same key may have committed since the check above, moving the
        # stream on: this one is its repeat, and gets its answer rather than an error.
        if _is_repeat(idempotency_key):
            return _repeat(deal_id, parsed, expected_version, actor, idempotency_key, batch=batch)
        raise
    return _append(
        deal_id, _new_events(checked), expected_version, actor, idempotency_key, batch=batch
    )


def _is_repeat(idempotency_key: str | None) -> bool:
    return bool(idempotency_key) and _stream_of_key(idempotency_key) is not None


def _repeat(
    deal_id: UUID,
    parsed: list[_Parsed],
    expected_version: int,
    actor: str,
    idempotency_key: str | None,
    *,
    batch: bool,
) -> Appended:
    """The store returns what the key's first call stored, or refuses a different body. The
    rules are not re-checked: the state has moved on since the first call."""
    return _append(
        deal_id, _new_events(parsed), expected_version, actor, idempotency_key, batch=batch
    )


def _parse(proposed: Sequence[ProposedEvent], *, batch: bool) -> list[_Parsed]:
    """Schema of every event, and `occurred` not in the future; all errors at once."""
    errors: list[FieldError] = []
    parsed: list[_Parsed] = []
    tolerance = timedelta(days=getattr(settings, "DEAL_FUTURE_TOLERANCE_DAYS", 1))
    latest = timezone.now().date() + tolerance
    for index, event in enumerate(proposed):
        prefix = f"events[{index}]." if batch else ""
        found: list[FieldError] = []
        data = _collect(found, parse_data, str(event.type), event.data, prefix=prefix + "data")
        occurred = _collect(found, parse_occurred, event.occurred, prefix=prefix + "occurred")
        source = _collect(
            found, parse_source, event.source, prefix=prefix + "source", latest=latest
        )
        if occurred is not None and occurred.date > latest:
            found.append(_future(prefix + "occurred", occurred, latest))
        if isinstance(data, FactCorrected) and data.occurred and data.occurred.date > latest:
            found.append(_future(prefix + "data.occurred", data.occurred, latest))
        errors.extend(found)
        if not found:
            parsed.append(_Parsed(event.type, data, occurred, source, prefix))
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


def _dry_run(
    deal_id: UUID, existing: list[RecordedEvent], parsed: list[_Parsed], *, actor: str
) -> tuple[Deal | None, Deal | None, list[_Parsed]]:
    """Fold the stream plus each new event in turn, checking the rules before each one.

    Returns the state before, the state after, and the events as they will be stored
    (corrections carry their target's schema version).
    """
    history: dict[UUID, Any] = {event.event_id: event for event in existing}
    before = replay_events(existing, deal_id=deal_id).state if existing else None
    if not existing and parsed[0].type != "DealOpened":
        raise DealNotFound(deal_id)
    state = before
    drafts: list[RecordedEvent] = []
    checked: list[_Parsed] = []
    now = timezone.now()
    version = existing[-1].version if existing else 0
    for item in parsed:
        errors = rules.check(state, item.type, item.data, history=history, prefix=item.prefix)
        if errors:
            raise InvalidEvent(errors)
        item = _normalise(item, history)
        checked.append(item)
        version += 1
        draft = _draft(deal_id, item, version, now, actor)
        drafts.append(draft)
        history[draft.event_id] = draft
        state = replay_events([*existing, *drafts], deal_id=deal_id).state
    _check_organisations(checked, history)
    return before, state, checked


def _normalise(item: _Parsed, history: Mapping[UUID, Any]) -> _Parsed:
    """Corrections store their target's full data in its current schema, with that version."""
    data = item.data
    if isinstance(data, FactCorrected) and data.data is not None:
        target_type = history[data.event_id].type
        current = schema_for(target_type).schema_version
        if data.data_schema_version not in (None, current):
            # The corrected data is read in the current schema; a client that says it wrote
            # another would have it stored under a version it did not mean.
            raise InvalidEvent.single(
                item.prefix + "data.data_schema_version",
                f"must be {current}, the current schema version of {target_type}, or omitted",
            )
        corrected = parse_data(target_type, data.data, prefix=item.prefix + "data.data")
        data = data.model_copy(update={"data": corrected.to_json(), "data_schema_version": current})
        return _Parsed(item.type, data, item.occurred, item.source, item.prefix)
    return item


def _check_organisations(items: list[_Parsed], history: Mapping[UUID, Any]) -> None:
    refs: list[tuple[str, UUID]] = []
    for item in items:
        refs.extend(
            (f"{item.prefix}data.{path}", org) for path, org in organisation_refs(item.data)
        )
        data = item.data
        if isinstance(data, FactCorrected) and data.data is not None:
            corrected = parse_data(history[data.event_id].type, data.data)
            refs.extend(
                (f"{item.prefix}data.data.{path}", org)
                for path, org in organisation_refs(corrected)
            )
    if not refs:
        return
    known = set(
        Organisation.objects.filter(id__in={org for _, org in refs}).values_list("id", flat=True)
    )
    missing = [
        FieldError(path, f"no organisation with id {org}") for path, org in refs if org not in known
    ]
    if missing:
        raise InvalidEvent(missing)


def _draft(deal_id: UUID, item: _Parsed, version: int, now: datetime, actor: str) -> RecordedEvent:
    return RecordedEvent(
        event_id=uuid4(),
        stream_id=deal_id,
        version=version,
        position=0,
        type=item.type,
        schema_version=type(item.data).schema_version,
        data=item.data.to_json(),
        occurred=item.occurred.to_json(),
        source=item.source.to_json(),
        actor=actor,
        recorded_at=now,
        prev_hash="",
        hash="",
    )


def _new_events(parsed: list[_Parsed]) -> list[NewEvent]:
    return [
        NewEvent(
            type=item.type,
            data=item.data.to_json(),
            occurred=item.occurred.to_json(),
            source=item.source.to_json(),
            schema_version=type(item.data).schema_version,
        )
        for item in parsed
    ]


def _append(
    deal_id: UUID,
    events: list[NewEvent],
    expected_version: int,
    actor: str,
    idempotency_key: str | None,
    *,
    batch: bool,
) -> Appended:
    try:
        with transaction.atomic():
            appended = append(
                deal_id, events, expected_version, actor=actor, idempotency_key=idempotency_key
            )
            if not appended.replayed:
                events_recorded.send(
                    sender=Deal,
                    deal_id=deal_id,
                    version=appended.version,
                    events=appended.events,
                )
    except UnstorableValue as error:
        raise InvalidEvent.single(_field_of(error.path, batch=batch), error.reason) from None
    return appended


def _field_of(path: str, *, batch: bool) -> str:
    # The store names fields "events[0].data.x"; a single event's errors say "data.x".
    if not batch and path.startswith("events[0]."):
        return path[len("events[0].") :]
    return path


_KEYED_DEALS = UUID("5b0f3c1e-8d4a-4f6e-9a57-3c2d1e0f9b8a")
"""Namespace of the deal ids that `open_deal` derives from idempotency keys."""


def _stream_of_key(key: str) -> UUID | None:
    return IdempotencyKey.objects.filter(key=key).values_list("stream_id", flat=True).first()
