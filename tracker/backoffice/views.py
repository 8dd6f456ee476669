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
from urllib.parse import urlencode
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
from django.urls import reverse
from django.utils import timezone
from pydantic import BaseModel

from tracker.deals import diff, replay, services
from tracker.deals.errors import DealNotFound, InvalidEvent, UnknownEventType
from tracker.deals.events import EVENT_TYPES, META_TYPES, Text, schema_for
from tracker.deals.reducer import BOOKKEEPING, STATE_FIELDS, deal_json
from tracker.eventstore.errors import StreamNotFound, VersionConflict
from tracker.eventstore.export import export_lines
from tracker.eventstore.records import MAX_VERSION
from tracker.eventstore.store import RecordedEvent, read_stream, stream_version, verify_stream
from tracker.projections.models import DealState

from .access import can_audit, can_record, can_view_deals
from .display import (
    EventRow,
    event_rows,
    humanise,
    names_at,
    newer_events,
    organisation_choices,
    organisation_names,
    show,
    state_changes,
    state_row,
)
from .forms import Choice, Context, EventForm, OccurredHolder, SchemaForm, event_form
from .timeline import PICKS, picked_point, timeline_bars

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


def _admin_context(request: HttpRequest, admin_site: AdminSite, title: str) -> dict[str, Any]:
    # The breadcrumbs of admin/base.html want a model's _meta; the deal pages sit under the
    # read model's admin, so its _meta is the one the breadcrumbs show.
    return {**admin_site.each_context(request), "title": title, "opts": DealState._meta}


def _fingerprint(deal_id: UUID, expected_version: int, payload: Mapping[str, Any]) -> str:
    body = json.dumps([str(deal_id), expected_version, payload], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


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
    rebase: Callable[[EventForm, int], EventForm] | None = None
    """After a version conflict: the form moved onto the deal as it now stands, keeping what
    the analyst changed in it since the version given (a correction's form only)."""


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

    expected = _version(request.POST.get("expected_version"))
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
            if page.rebase is not None:
                form = page.rebase(form, expected)
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


def _version(value: str | None) -> int | None:
    """A version a form or link carries; None unless it is one a stream can have."""
    try:
        version = int(value) if value is not None else None
    except ValueError:
        return None
    return version if version is not None and 0 <= version <= MAX_VERSION else None


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
    events, names = _deal_events(request, deal_id, allowed=can_record)
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
    events, names = _deal_events(request, deal_id, allowed=can_record)
    rows = {row.event.event_id: row for row in event_rows(events, names)}
    row = rows.get(event_id)
    if row is None:
        raise Http404("No such event in this deal.")
    if not row.can_correct:
        if request.method == "POST" and row.retracted_by is not None:
            # Retracted while the form was open: say so where the retraction shows.
            messages.error(
                request,
                f"v{row.event.version} {row.event.type} was retracted by v{row.retracted_by} "
                "while you were correcting it, so it can no longer be corrected. Nothing was "
                "saved.",
            )
            return HttpResponseRedirect(reverse("admin:deal_page", args=[deal_id]))
        raise Http404("This event cannot be corrected.")
    target = row.event
    current_data, current_occurred = row.status.data, row.status.occurred
    model = schema_for(target.type)
    context = Context(organisations=organisation_choices())

    def build(data: Mapping[str, Any] | None, start: Mapping[str, Any] | None = None) -> EventForm:
        start = start or {}
        form = event_form(
            "FactCorrected",
            model,
            context=context,
            data=data,
            initial={
                "data": start.get("data", current_data),
                "occurred": start.get("event_occurred") or {"date": "", "precision": "day"},
                "source": start.get("source"),
            },
            data_prefix="data.data",
        )
        form.extras = [
            SchemaForm(
                OccurredHolder,
                prefix="data",
                context=context,
                data=data,
                initial={"occurred": start.get("occurred", current_occurred)},
            ),
            SchemaForm(
                _CorrectionReason,
                prefix="data",
                context=context,
                data=data,
                initial={"reason": start.get("reason")},
            ),
        ]
        return form

    def rebase(form: EventForm, opened_at: int) -> EventForm:
        # Sent whole, the form's data would put back every value another correction changed
        # since the form was opened: the analyst's own changes go over the fact as it now is.
        then = next(
            (r for r in event_rows(events[:opened_at], names) if r.event.event_id == event_id),
            None,
        )
        mine = _normalised(target.type, form.data.value())
        if then is None or "__invalid__" in mine:
            return form
        return build(
            None,
            {
                "data": _merged(
                    _normalised(target.type, then.status.data),
                    mine,
                    _normalised(target.type, current_data),
                ),
                "occurred": _merged(
                    then.status.occurred,
                    form.extras[0].value().get("occurred"),
                    current_occurred,
                ),
                "reason": form.extras[1].value().get("reason"),
                "event_occurred": form.occurred.value().get("occurred"),
                "source": form.source.value(),
            },
        )

    def payload(form: EventForm) -> dict[str, Any]:
        base = form.payload()
        new_data = base["data"]
        new_occurred = form.extras[0].value().get("occurred")
        reason = form.extras[1].value().get("reason", "")
        if not reason:
            form.extras[1].refuse("reason", "Give the reason for this correction.")
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
        rebase=rebase,
        intro=(
            "Change what was wrong and give the reason. The original stays in the record, "
            "marked as corrected; the latest correction wins."
        ),
    )
    return _event_form_page(request, admin_site, page)


class _CorrectionReason(BaseModel):
    """A correction's reason, required here although the catalogue allows it empty."""

    reason: Text


_UNSET = object()


def _merged(base: Any, mine: Any, theirs: Any) -> Any:
    """A three-way merge: what changed from `base` to `mine`, applied over `theirs`, object by
    object (a list or a value changed on both sides is taken as `mine`)."""
    if mine == base:
        return theirs
    if theirs in (base, mine):
        return mine
    if not (isinstance(base, dict) and isinstance(mine, dict) and isinstance(theirs, dict)):
        return mine
    merged = {}
    for key in dict.fromkeys([*theirs, *mine]):
        value = _merged(base.get(key, _UNSET), mine.get(key, _UNSET), theirs.get(key, _UNSET))
        if value is not _UNSET:
            merged[key] = value
    return merged


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
    events, names = _deal_events(request, deal_id, allowed=can_view_deals)
    current = replay.replay_events(events, deal_id=deal_id).state
    state = humanise(deal_json(current), names) if current else {}
    context = {
        **_admin_context(request, admin_site, current.title if current else str(deal_id)),
        "deal_id": deal_id,
        "state": current,
        "state_rows": [
            state_row(name, state.get(name))
            for name in STATE_SHOWN
            if state.get(name) not in (None, "", [])
        ],
        "rows": list(reversed(event_rows(events, names))),
        "event_types": [name for name in EVENT_TYPES if name not in (*META_TYPES, "DealOpened")],
        "can_record": can_record(request.user),
        "can_audit": can_audit(request.user),
        "events_url": reverse("admin:eventstore_event_changelist")
        + f"?stream__id__exact={deal_id}",
    }
    return TemplateResponse(request, TEMPLATES + "deal_page.html", context)


def _deal_events(
    request: HttpRequest, deal_id: UUID, *, allowed: Callable[[Any], bool]
) -> tuple[list[RecordedEvent], dict[str, str]]:
    """The deal's events and the organisations' names, for a user `allowed`; 403, or 404."""
    if not allowed(request.user):
        raise PermissionDenied
    events = read_stream(deal_id)
    if not events:
        raise Http404("No such deal.")
    return events, organisation_names()


# --- the auditor's page ------------------------------------------------------------------------


def audit_view(request: HttpRequest, admin_site: AdminSite, deal_id: UUID) -> HttpResponse:
    """Timeline, replay as of / as known at, the diff between two points, and the hash chain's
    verification, for auditors."""
    events, names = _deal_events(request, deal_id, allowed=can_audit)
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
    comparison = _comparison(request, events, [bar.row for bar in bars], names, errors)
    asked_params = {k: v for k in ("as_of", "known_at") if (v := request.GET.get(k, ""))}
    # The replay against today, as a diff with the events that explain it.
    explain = {**asked_params, **{f"to_{k}": v for k, v in asked_params.items()}}
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
            [state_row(name, replayed.get(name)) for name in REPLAY_SHOWN] if replayed else []
        ),
        "differences": state_changes(today.state, asked.state, names, names_then),
        "explain_url": f"?{urlencode(explain)}#compare",
        "names_known_at": known_at if names_then is not names else None,
        "today": today,
        "verification": verification,
        "export_url": reverse("admin:deal_export", args=[deal_id]),
        "compare": comparison,
        "picks": PICKS,
    }
    return TemplateResponse(request, TEMPLATES + "audit.html", context)


COMPARED = ("from_as_of", "from_known_at", "to_as_of", "to_known_at")


@dataclass
class ShownChange:
    """One change of a diff as the audit page shows it: values as text, ids as names."""

    op: str
    path: str
    old: str
    new: str
    explained_by: tuple[diff.Explanation, ...]


def _comparison(
    request: HttpRequest,
    events: Sequence[RecordedEvent],
    rows: Sequence[EventRow],
    names: Mapping[str, str],
    errors: dict[str, str],
) -> dict[str, Any]:
    """The audit page's diff between two points: two events picked on the timeline
    (`pick_from`, `pick_to`, `pick_by`), or the four inputs of the comparison's form."""
    query = request.GET
    by = query.get("pick_by") if query.get("pick_by") in PICKS else "known_at"
    shown = {name: query.get(name, "") for name in COMPARED}
    points: dict[str, tuple[date | None, datetime | None]] = {}
    picked = {end: query.get(f"pick_{end}", "") for end in ("from", "to")}
    if any(picked.values()):
        by_version = {row.event.version: row for row in rows}
        for end, version in picked.items():
            row = by_version.get(_version(version) or 0)
            if version and row is None:
                errors[f"pick_{end}"] = "Pick an event of the timeline."
            point = picked_point(row, by) if row is not None else (None, None)
            points[end] = point
            shown[f"{end}_as_of"] = point[0].isoformat() if point[0] else ""
            shown[f"{end}_known_at"] = _moment_text(point[1]) if point[1] else ""
    elif any(shown.values()):
        for end in ("from", "to"):
            points[end] = (
                _date_param(shown[f"{end}_as_of"], f"{end}_as_of", errors),
                _moment_param(shown[f"{end}_known_at"], f"{end}_known_at", errors),
            )
    comparison: dict[str, Any] = {
        "values": shown,
        "picked": {end: _version(version) for end, version in picked.items()},
        "pick_by": by,
        "ends": (("from", "From"), ("to", "To")),
        "diff": None,
        "explaining": set(),
    }
    if not points or any(name in errors for name in (*COMPARED, "pick_from", "pick_to")):
        return comparison
    (from_as_of, from_known_at), (to_as_of, to_known_at) = points["from"], points["to"]
    found = diff.diff(
        events,
        from_as_of=from_as_of,
        from_known_at=from_known_at,
        to_as_of=to_as_of,
        to_known_at=to_known_at,
    )
    comparison["diff"] = found
    comparison["same_point"] = points["from"] == points["to"]
    comparison["from_label"] = _point_label(from_as_of, from_known_at)
    comparison["to_label"] = _point_label(to_as_of, to_known_at)
    comparison["changes"] = [
        ShownChange(
            op=change.op,
            path=change.path or "(the whole state)",
            old=show(humanise(change.old, names)) if change.op != "add" else "",
            new=show(humanise(change.new, names)) if change.op != "remove" else "",
            explained_by=change.explained_by,
        )
        for change in found.changes
    ]
    comparison["explaining"] = {e.version for c in found.changes for e in c.explained_by}
    return comparison


def _point_label(as_of: date | None, known_at: datetime | None) -> str:
    if as_of is None and known_at is None:
        return "now"
    parts = [f"as of {as_of.isoformat()}"] if as_of else []
    if known_at:
        parts.append(f"as known at {_moment_text(known_at).replace('T', ' ')} UTC")
    return ", ".join(parts)


def _moment_text(moment: datetime) -> str:
    """A ledger time as the comparison's inputs show it: UTC, to the millisecond."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


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
    """A ledger moment from the page, covering its whole millisecond as the API's does."""
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
        return replay.to_the_millisecond(moment.astimezone(UTC))
    except OverflowError:
        errors[name] = "Give a moment between 0001-01-01 and 9999-12-31 in UTC."
        return None
