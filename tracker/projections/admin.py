"""The deals in the admin, listed from the read model, and the deal pages wired under them.

The list reads `DealState` (stage, kind, parties, last update) and never writes it; the deal
page, the event forms and the auditor's page (`tracker.deals.adminsite.views`) read the event
stream and write only through `deals.services`. The event list is replaced by one that adds
each event's deal, its retraction/correction marks and row actions, which the event store's own
admin cannot know about (it imports nothing of deals).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from tracker.deals.adminsite import views
from tracker.deals.adminsite.access import can_record, can_view_deals
from tracker.deals.events import META_TYPES
from tracker.deals.models import Organisation
from tracker.eventstore.admin import ReadOnlyEventAdmin
from tracker.eventstore.models import Event

from .models import DealState


@admin.register(DealState)
class DealStateAdmin(admin.ModelAdmin):
    list_display = (
        "deal_title",
        "kind",
        "stage",
        "party_names",
        "uncertain",
        "version",
        "updated_at",
    )
    list_filter = ("stage", "kind", "uncertain")
    search_fields = ("title",)
    list_display_links = None
    ordering = ("-updated_at",)
    actions = None
    list_per_page = 50

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site

        def wrap(view: Any) -> Any:
            return site.admin_view(partial(view, admin_site=site))

        return [
            path("", site.admin_view(self.changelist_view), name="deal_list"),
            path("open/", wrap(views.open_deal_view), name="deal_open"),
            path("<uuid:deal_id>/change/", wrap(views.deal_page_view), name="deal_page"),
            path(
                "<uuid:deal_id>/record/<str:event_type>/",
                wrap(views.record_event_view),
                name="deal_record",
            ),
            path(
                "<uuid:deal_id>/correct/<uuid:event_id>/",
                wrap(views.correct_event_view),
                name="deal_correct",
            ),
            path("<uuid:deal_id>/audit/", wrap(views.audit_view), name="deal_audit"),
            *super().get_urls(),
        ]

    # --- the list ------------------------------------------------------------------------------

    @admin.display(description="deal", ordering="title")
    def deal_title(self, obj: DealState) -> str:
        url = reverse("admin:deal_page", args=[obj.deal_id])
        return format_html('<a href="{}">{}</a>', url, obj.title or obj.deal_id)

    @admin.display(description="parties")
    def party_names(self, obj: DealState) -> str:
        names = getattr(obj, "_party_names", [])
        return format_html_join(", ", "{}", ((name,) for name in names)) or "—"

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # One query for the parties' names of the whole page, not one per row.
        rows = list(changelist.result_list)
        ids = {
            party["organisation"] for row in rows for party in (row.state or {}).get("parties", [])
        }
        names = {str(org.id): str(org) for org in Organisation.objects.filter(id__in=ids)}
        for row in rows:
            row._party_names = [
                names.get(party["organisation"], party["organisation"])
                for party in (row.state or {}).get("parties", [])
            ]
        return changelist

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"title": "Deals", "can_open": can_record(request.user), **(extra_context or {})}
        return super().changelist_view(request, extra)

    # --- what may be done ----------------------------------------------------------------------

    def add_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return views.open_deal_view(request, admin_site=self.admin_site)

    def change_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Deal pages are at <uuid>/change/; anything else that reaches here is no deal.
        raise Http404("No such deal.")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view_deals(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_deals(request.user) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_record(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DealEventAdmin(ReadOnlyEventAdmin):
    """The read-only event list, with each event's deal, marks and row actions."""

    class Media:
        css = {"all": ("deals/admin.css",)}

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
        marks: dict[str, list[tuple[str, str]]] = defaultdict(list)
        meta = Event.objects.filter(stream_id__in=streams, type__in=META_TYPES).values_list(
            "type", "version", "data"
        )
        for kind, version, data in meta.order_by("version"):
            label = "retracted" if kind == "FactRetracted" else "corrected"
            marks[str(data.get("event_id"))].append((label, f"{label} by v{version}"))
        allowed = can_record(request.user)
        for row in rows:
            row._deal_title = titles.get(row.stream_id) or str(row.stream_id)
            row._marks = marks.get(str(row.event_id), [])
            row._can_record = allowed
        return changelist

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view_deals(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_deals(request.user) or super().has_view_permission(request, obj)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse | TemplateResponse:
        return super().changelist_view(request, {"title": "Events", **(extra_context or {})})


def _replace_event_admin() -> None:
    if admin.site.is_registered(Event):
        admin.site.unregister(Event)
    admin.site.register(Event, DealEventAdmin)


_replace_event_admin()
