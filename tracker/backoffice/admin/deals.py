"""The deals in the admin, listed from the read model, and the deal pages wired under them.

The list reads `DealState` (stage, kind, parties, last update) and never writes it; the deal
page, the event forms and the auditor's page (`tracker.backoffice.views`) read the event stream
and write only through `deals.services`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from tracker.deals.models import Organisation
from tracker.projections.models import DealState

from .. import views
from ..access import can_record
from ..site import SeenByDealViewers


@admin.register(DealState)
class DealStateAdmin(SeenByDealViewers):
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
            path("<uuid:deal_id>/export/", wrap(views.export_view), name="deal_export"),
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[DealState]:
        # Without the state: a filter through a related table makes the admin's list DISTINCT,
        # which a `json` column cannot take part in. The page's parties are read below.
        return super().get_queryset(request).defer("state")

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # One query for the page's parties and one for their names, not one per row.
        rows = list(changelist.result_list)
        parties = {
            deal_id: (state or {}).get("parties", [])
            for deal_id, state in DealState.objects.filter(
                deal_id__in=[row.deal_id for row in rows]
            ).values_list("deal_id", "state")
        }
        ids = {party["organisation"] for found in parties.values() for party in found}
        names = {str(org.id): str(org) for org in Organisation.objects.filter(id__in=ids)}
        for row in rows:
            row._party_names = [
                names.get(party["organisation"], party["organisation"])
                for party in parties.get(row.deal_id, [])
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_record(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
