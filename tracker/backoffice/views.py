"""The deal pages of the admin: open a deal, record, retract and correct facts, and audit.

Every write goes through `deals.services` (`preview_event`, `record_event`, `open_deal`); these
views only turn forms into the services' JSON and errors back into messages beside fields.

The views hang off the admin site through the read model's ModelAdmin
(`tracker.backoffice.admin.deals.DealStateAdmin.get_urls`), which names them `admin:deal_page`,
`admin:deal_list`, `admin:deal_open`, `admin:deal_record`, `admin:deal_correct`,
`admin:deal_audit` and `admin:deal_export`; each is wrapped in `admin_site.admin_view` (active
staff only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID, uuid4

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from pydantic import BaseModel

from tracker.deals import history, replay, services
from tracker.deals.errors import DealNotFound, InvalidEvent, UnknownEventType
from tracker.deals.events import EVENT_TYPES, META_TYPES, Text, period_end, schema_for
from tracker.deals.models import Organisation
from tracker.deals.reducer import BOOKKEEPING, STATE_FIELDS, Deal, changed_fields, deal_json
from tracker.eventstore.errors import StreamNotFound, VersionConflict
from tracker.eventstore.export import export_lines
from tracker.eventstore.store import RecordedEvent, read_stream, stream_version, verify_stream
from tracker.projections.models import DealState

from .access import can_audit, can_record, can_view_deals
from .forms import Choice, Context, EventForm, OccurredHolder, SchemaForm, event_form

TEMPLATES = "admin/deals/"
STATE_SHOWN = tuple(n for n in STATE_FIELDS if n not in {*BOOKKEEPING, "id", "title", "opened_on"})
"""The deal page's table: the state but for the heading's fields and the bookkeeping."""
REPLAY_SHOWN = (
    "stage",
    "uncertain",
    *(n for n in STATE_SHOWN if n not in ("stage", "summary")),
    "version",
)
"""The audit page's replayed state."""


# --- shared helpers ----------------------------------------------------------------------------


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


def _row(name: str, value: Any) -> tuple[str, str, bool]:
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


def _admin_context(request: HttpRequest, admin_site: AdminSite, title: str) -> dict[str, Any]:
    # The breadcrumbs of admin/base.html want a model's _meta; the deal pages sit under the
    # read model's admin, so its _meta is the one the breadcrumbs show.
    return {**admin_site.each_context(request), "title": title, "opts": DealState._meta}


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


def _fingerprint(deal_id: UUID, expected_version: int, payload: Mapping[str, Any]) -> str:
    body = json.dumps([str(deal_id), expected_version, payload], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


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


# --- the event form page -----------------------------------------------------------------------


@dataclass
class FormPage:
    """What differs between opening a deal, recording an event and correcting one."""

    title: str
    deal_id: UUID
    event_type: str
    build: Callable[[Mapping[str, Any] | None], EventForm]
    payload: Callable[[EventForm], dict[str, Any]]
    opening: bool = False
    intro: str = ""
    target: EventRow | None = None
    deal_title: str = ""


def _event_form_page(request: HttpRequest, admin_site: AdminSite, page: FormPage) -> HttpResponse:
    if not can_record(request.user):
        raise PermissionDenied
    names = organisation_names()
    context: dict[str, Any] = {
        **_admin_context(request, admin_site, page.title),
        "page": page,
        "deal_id": page.deal_id,
        "deal_url": None if page.opening else reverse("admin:deal_page", args=[page.deal_id]),
        "preview": None,
        "conflict": None,
        "newer": [],
        "fingerprint": "",
    }
    if request.method != "POST":
        expected = 0 if page.opening else stream_version(page.deal_id)
        if not page.opening and expected == 0:
            raise Http404("No such deal.")
        form = page.build(None)
        return _render_form(request, context, form, expected)

    expected = _int(request.POST.get("expected_version"))
    if expected is None:
        raise PermissionDenied("The form lost the version it was opened at; open it again.")
    form = page.build(request.POST)
    payload = page.payload(form)
    if form.has_local_errors:
        return _render_form(request, context, form, expected)
    fingerprint = _fingerprint(page.deal_id, expected, payload)
    wants_save = "_save" in request.POST
    if wants_save and request.POST.get("fingerprint") != fingerprint:
        messages.warning(
            request,
            "The form changed since its preview: check the new preview below, then save.",
        )
        wants_save = False
    if wants_save:
        try:
            # DealOpened at version 0 is what `services.open_deal` sends; calling record_event
            # keeps one path for every type (a blank summary is simply left to its default).
            appended = services.record_event(
                deal_id=page.deal_id,
                event_type=page.event_type,
                data=payload["data"],
                occurred=payload["occurred"],
                source=payload["source"],
                expected_version=0 if page.opening else expected,
                actor=request.user.get_username(),
                opens_deal=page.opening,
            )
        except InvalidEvent as invalid:
            form.attach(invalid.errors)
            return _render_form(request, context, form, expected)
        except DealNotFound:
            raise Http404("No such deal.") from None
        except VersionConflict as conflict:
            if page.opening:
                messages.info(request, "This deal was already opened (the form was sent twice).")
                return HttpResponseRedirect(reverse("admin:deal_page", args=[page.deal_id]))
            context["conflict"] = conflict
            context["newer"] = newer_events(page.deal_id, expected, names)
            # The analyst has now seen the newer events; the form moves to the current version,
            # and the fingerprint (which includes it) forces a fresh preview before saving.
            return _render_form(request, context, form, conflict.current_version)
        event = appended.events[-1]
        messages.success(
            request,
            f"Recorded {event.type} as version {event.version} of the deal.",
        )
        return HttpResponseRedirect(reverse("admin:deal_page", args=[page.deal_id]))

    try:
        preview = services.preview_event(
            deal_id=page.deal_id,
            event_type=page.event_type,
            data=payload["data"],
            occurred=payload["occurred"],
            source=payload["source"],
        )
    except InvalidEvent as invalid:
        form.attach(invalid.errors)
        return _render_form(request, context, form, expected)
    except DealNotFound:
        raise Http404("No such deal.") from None
    context["preview"] = {
        "changes": state_changes(preview.before, preview.after, names),
        "stage_before": preview.before.stage if preview.before else None,
        "stage_after": preview.after.stage if preview.after else None,
        "uncertain": preview.after.uncertain if preview.after else False,
    }
    if preview.version != expected:
        context["newer"] = newer_events(page.deal_id, expected, names)
    context["fingerprint"] = fingerprint
    return _render_form(request, context, form, expected)


def _render_form(
    request: HttpRequest, context: dict[str, Any], form: EventForm, expected: int
) -> TemplateResponse:
    context["form"] = form
    context["expected_version"] = expected
    return TemplateResponse(request, TEMPLATES + "event_form.html", context)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _standard_payload(form: EventForm) -> dict[str, Any]:
    return form.payload()


def open_deal_view(request: HttpRequest, admin_site: AdminSite) -> HttpResponse:
    """Open a deal with its DealOpened event; the new id travels in the form."""
    deal_id = _uuid(request.POST.get("deal_id")) if request.method == "POST" else uuid4()
    if deal_id is None:
        raise PermissionDenied("The form lost the id of the deal it opens; open it again.")
    context = Context(organisations=organisation_choices())
    model = schema_for("DealOpened")
    page = FormPage(
        title="Open a deal",
        deal_id=deal_id,
        event_type="DealOpened",
        opening=True,
        build=lambda data: event_form("DealOpened", model, context=context, data=data),
        payload=_standard_payload,
        intro="A deal opens with its title, kind and parties, dated and sourced like every fact.",
    )
    return _event_form_page(request, admin_site, page)


def record_event_view(
    request: HttpRequest, admin_site: AdminSite, deal_id: UUID, event_type: str
) -> HttpResponse:
    """Record one event of any type in the catalogue, from a form generated from its schema."""
    try:
        model = schema_for(event_type)
    except UnknownEventType:
        raise Http404("No such event type.") from None
    if event_type == "DealOpened":
        raise Http404("A deal is opened once, from the deal list.")
    events = read_stream(deal_id)
    if not events:
        raise Http404("No such deal.")
    names = organisation_names()
    rows = event_rows(events, names)
    choices = [
        Choice(str(row.event.event_id), f"v{row.event.version} {row.event.type} · {row.occurred}")
        for row in rows
        if (row.can_retract if event_type == "FactRetracted" else row.can_correct)
    ]
    context = Context(organisations=organisation_choices(), events=choices)
    initial: dict[str, Any] = {}
    target = _uuid(request.GET.get("event_id"))
    if target is not None:
        initial["data"] = {"event_id": str(target)}
    target_row = next((r for r in rows if target and r.event.event_id == target), None)
    page = FormPage(
        title=f"Record {event_type}",
        deal_title=_title(events),
        deal_id=deal_id,
        event_type=event_type,
        build=lambda data: event_form(
            event_type, model, context=context, data=data, initial=initial
        ),
        payload=_standard_payload,
        target=target_row,
        intro=(model.__doc__ or "").strip().split("\n\n")[0]
        if model.__doc__ and "Subclasses" not in model.__doc__
        else "",
    )
    return _event_form_page(request, admin_site, page)


def correct_event_view(
    request: HttpRequest, admin_site: AdminSite, deal_id: UUID, event_id: UUID
) -> HttpResponse:
    """Correct one fact: its own form, filled with its current data and date, plus a reason."""
    events = read_stream(deal_id)
    if not events:
        raise Http404("No such deal.")
    names = organisation_names()
    rows = {row.event.event_id: row for row in event_rows(events, names)}
    row = rows.get(event_id)
    if row is None:
        raise Http404("No such event in this deal.")
    if not row.can_correct:
        raise Http404("This event cannot be corrected.")
    target = row.event
    current_data, current_occurred = row.status.data, row.status.occurred
    model = schema_for(target.type)
    context = Context(organisations=organisation_choices())

    def build(data: Mapping[str, Any] | None) -> EventForm:
        form = event_form(
            "FactCorrected",
            model,
            context=context,
            data=data,
            initial={"data": current_data, "occurred": {"date": "", "precision": "day"}},
            data_prefix="data.data",
        )
        form.extras = [
            SchemaForm(
                OccurredHolder,
                prefix="data",
                context=context,
                data=data,
                initial={"occurred": current_occurred},
            ),
            SchemaForm(_CorrectionReason, prefix="data", context=context, data=data),
        ]
        return form

    def payload(form: EventForm) -> dict[str, Any]:
        base = form.payload()
        new_data = base["data"]
        new_occurred = form.extras[0].value().get("occurred")
        reason = form.extras[1].value().get("reason", "")
        data: dict[str, Any] = {"event_id": str(target.event_id), "reason": reason}
        if _normalised(target.type, new_data) != _normalised(target.type, current_data):
            data["data"] = new_data
        if new_occurred != current_occurred:
            data["occurred"] = new_occurred
        return {**base, "data": data}

    page = FormPage(
        title=f"Correct v{target.version} {target.type}",
        deal_title=_title(events),
        deal_id=deal_id,
        event_type="FactCorrected",
        build=build,
        payload=payload,
        target=row,
        intro=(
            "Change what was wrong and give the reason. The original stays in the record, "
            "marked as corrected; the latest correction wins."
        ),
    )
    return _event_form_page(request, admin_site, page)


class _CorrectionReason(BaseModel):
    """A correction's reason, required here although the catalogue allows it empty."""

    reason: Text


def _normalised(event_type: str, data: Mapping[str, Any]) -> Any:
    try:
        return schema_for(event_type).model_validate(dict(data)).to_json()
    except Exception:
        # Invalid input is sent as it is, so the services name what is wrong with it.
        return {"__invalid__": dict(data)}


def _title(events: Sequence[RecordedEvent]) -> str:
    state = replay.replay_events(events).state
    return state.title if state else ""


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


# --- the deal page -----------------------------------------------------------------------------


def deal_page_view(request: HttpRequest, admin_site: AdminSite, deal_id: UUID) -> HttpResponse:
    """A deal's current state (replayed), its events with their marks, and what can be done."""
    if not can_view_deals(request.user):
        raise PermissionDenied
    events = read_stream(deal_id)
    if not events:
        raise Http404("No such deal.")
    names = organisation_names()
    current = replay.replay_events(events, deal_id=deal_id).state
    state = humanise(deal_json(current), names) if current else {}
    context = {
        **_admin_context(request, admin_site, current.title if current else str(deal_id)),
        "deal_id": deal_id,
        "state": current,
        "state_rows": [
            _row(name, state.get(name))
            for name in STATE_SHOWN
            if state.get(name) not in (None, "", [])
        ],
        "rows": list(reversed(event_rows(events, names))),
        "event_types": [name for name in EVENT_TYPES if name not in (*META_TYPES, "DealOpened")],
        "can_record": can_record(request.user),
        "can_audit": can_audit(request.user),
        "events_url": _events_url(deal_id),
    }
    return TemplateResponse(request, TEMPLATES + "deal_page.html", context)


def _events_url(deal_id: UUID) -> str | None:
    try:
        return reverse("admin:eventstore_event_changelist") + f"?stream__id__exact={deal_id}"
    except NoReverseMatch:
        return None


# --- the auditor's page ------------------------------------------------------------------------


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


def audit_view(request: HttpRequest, admin_site: AdminSite, deal_id: UUID) -> HttpResponse:
    """Timeline, replay as of / as known at, and the hash chain's verification, for auditors."""
    if not can_audit(request.user):
        raise PermissionDenied
    events = read_stream(deal_id)
    if not events:
        raise Http404("No such deal.")
    names = organisation_names()
    errors: dict[str, str] = {}
    as_of = _date_param(request.GET.get("as_of"), "as_of", errors)
    known_at = _moment_param(request.GET.get("known_at"), "known_at", errors)
    today = replay.replay_events(events, deal_id=deal_id)
    asked = replay.replay_events(events, deal_id=deal_id, as_of=as_of, known_at=known_at)
    axis, bars = timeline_bars(events, names, as_of)
    # Organisations are reference data edited in place: as known at K, they had K's names.
    names_then = names_at(asked.state, known_at) if known_at and asked.state else names
    replayed = humanise(deal_json(asked.state), names_then) if asked.state else None
    verification = verify_stream(deal_id)
    context = {
        **_admin_context(
            request, admin_site, f"Audit: {today.state.title if today.state else deal_id}"
        ),
        "deal_id": deal_id,
        "deal_url": reverse("admin:deal_page", args=[deal_id]),
        "axis": axis,
        "bars": bars,
        "as_of": request.GET.get("as_of", ""),
        "known_at": request.GET.get("known_at", ""),
        "asked": asked,
        "asking": bool(as_of or known_at),
        "param_errors": errors,
        "replayed_rows": (
            [_row(name, replayed.get(name)) for name in REPLAY_SHOWN] if replayed else []
        ),
        "differences": state_changes(today.state, asked.state, names, names_then),
        "names_known_at": known_at if names_then is not names else None,
        "today": today,
        "verification": verification,
        "export_url": reverse("admin:deal_export", args=[deal_id]),
    }
    return TemplateResponse(request, TEMPLATES + "audit.html", context)


def export_view(request: HttpRequest, admin_site: AdminSite, deal_id: UUID) -> HttpResponse:
    """The deal's offline-verifiable export (docs/export-format.md), for auditors.

    The event store's one export writer makes the lines, the same the API's export sends.
    """
    if not can_audit(request.user):
        raise PermissionDenied
    try:
        lines = export_lines(deal_id)
    except StreamNotFound:
        raise Http404("No such deal.") from None
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="deal-{deal_id}.jsonl"'
    return response


def _date_param(value: str | None, name: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = "Give a date as YYYY-MM-DD."
        return None


def _moment_param(value: str | None, name: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    try:
        if len(value) == 10:
            # A bare date means "by the end of that day" (UTC).
            return datetime.combine(date.fromisoformat(value), time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors[name] = "Give a date and time, e.g. 2025-07-01T12:00 (UTC)."
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        # Compared with the ledger's UTC times, a moment must exist in UTC: 9999-12-31T23:59
        # at -01:00 is in the year 10000.
        return moment.astimezone(UTC)
    except OverflowError:
        errors[name] = "Give a moment between 0001-01-01 and 9999-12-31 in UTC."
        return None
