"""Events in the admin: a list to filter and search, and nothing that could change one.

The database refuses UPDATE and DELETE of events anyway; the admin does not offer them, for
superusers too: no add, change or delete view (403), no bulk action. Each row shows its deal,
its retraction/correction marks and, for editors, the actions to retract or correct it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from tracker.deals import replay
from tracker.deals.events import META_TYPES
from tracker.eventstore.models import Event
from tracker.projections.models import DealState

from ..access import can_record
from ..site import RecordAdmin


@admin.register(Event)
class EventAdmin(RecordAdmin):
    class Media:
        css = {"all": ("backoffice/admin.css",)}

    list_display = (
        "position",
        "deal",
        "version",
        "type",
        "occurred_on",
        "actor",
        "recorded_at",
        "status",
        "row_actions",
    )
    list_filter = ("type", "recorded_at", "actor")
    search_fields = ("type", "actor", "=event_id", "=stream__id")
    list_display_links = None
    list_per_page = 50
    ordering = ("-position",)
    show_full_result_count = False

    # --- the list ------------------------------------------------------------------------------

    @admin.display(description="occurred")
    def occurred_on(self, obj: Event) -> str:
        if not obj.occurred:
            return "—"
        return f"{obj.occurred.get('date')} ({obj.occurred.get('precision')})"

    @admin.display(description="deal")
    def deal(self, obj: Event) -> str:
        url = reverse("admin:deal_page", args=[obj.stream_id])
        return format_html('<a href="{}">{}</a>', url, getattr(obj, "_deal_title", obj.stream_id))

    @admin.display(description="status")
    def status(self, obj: Event) -> str:
        marks = getattr(obj, "_marks", [])
        return format_html_join(
            " ",
            '<span class="dt-mark dt-mark-{}">{}</span>',
            ((kind, text) for kind, text in marks),
        )

    @admin.display(description="")
    def row_actions(self, obj: Event) -> str:
        if not getattr(obj, "_can_record", False) or obj.type in META_TYPES:
            return ""
        if any(kind == "retracted" for kind, _ in getattr(obj, "_marks", [])):
            return ""
        links = []
        if obj.type != "DealOpened":
            retract = reverse("admin:deal_record", args=[obj.stream_id, "FactRetracted"])
            links.append(("Retract", f"{retract}?event_id={obj.event_id}"))
        links.append(("Correct", reverse("admin:deal_correct", args=[obj.stream_id, obj.event_id])))
        return format_html_join(" ", '<a class="button" href="{1}">{0}</a>', links)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        streams = {row.stream_id for row in rows}
        titles = dict(DealState.objects.filter(deal_id__in=streams).values_list("deal_id", "title"))
        # What the retractions and corrections of these deals did to the rows, by replay's rule.
        meta = Event.objects.filter(stream_id__in=streams, type__in=META_TYPES)
        events = {event.event_id: event for event in [*meta, *rows]}
        statuses = replay.fact_statuses(events.values())
        allowed = can_record(request.user)
        for row in rows:
            status = statuses[row.event_id]
            row._deal_title = titles.get(row.stream_id) or str(row.stream_id)
            row._marks = [("corrected", f"corrected by v{v}") for v in status.corrected_by]
            if status.retracted_by is not None:
                row._marks.insert(0, ("retracted", f"retracted by v{status.retracted_by}"))
            row._can_record = allowed
        return changelist

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse | TemplateResponse:
        return super().changelist_view(request, {"title": "Events", **(extra_context or {})})

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # One deal's events: the deal pages link here with ?stream__id__exact=<id>.
        return lookup == "stream__id__exact" or super().lookup_allowed(lookup, value, request)

    # --- what may be done ----------------------------------------------------------------------

    def change_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raise PermissionDenied("Events are never changed; retract or correct them instead.")

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raise PermissionDenied("Events are never deleted; retract them instead.")

    def history_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raise PermissionDenied("Events have no edit history: they are never edited.")
