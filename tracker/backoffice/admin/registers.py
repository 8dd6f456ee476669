"""Published registers in the admin: how a register names organisations, and its imports.

`RegisterName` is the analysts' mapping (SIPRI's "Turkiye" is the Government of Türkiye), edited
by editors. `RegisterImport` is a record of work done, written once by the importer: it is listed
and shown, never added, changed or deleted by hand. The upload page
(`tracker.backoffice.imports`) hangs off the imports' list as `admin:register_import_upload`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tracker.deals.models import ImportedEvent, RegisterImport, RegisterName
from tracker.projections.models import DealState

from .. import imports
from ..access import can_record
from ..imports import unresolved_links
from ..site import RecordAdmin, SeenByDealViewers

DEALS_SHOWN = 500
"""An import's page links at most this many of its deals (a first edition touches thousands)."""


@admin.register(RegisterName)
class RegisterNameAdmin(SeenByDealViewers):
    list_display = ("name", "register", "organisation")
    list_filter = ("register",)
    search_fields = ("name",)
    autocomplete_fields = ("organisation",)
    fields = ("register", "name", "organisation")
    list_per_page = 100

    # Editors keep the mapping; auditors may read it (it decides which deal a row lands in).

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_record(request.user) or super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_record(request.user) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_record(request.user) or super().has_delete_permission(request, obj)


@admin.register(RegisterImport)
class RegisterImportAdmin(RecordAdmin):
    class Media:
        css = {"all": ("backoffice/admin.css",)}

    list_display = (
        "edition",
        "register",
        "file_name",
        "actor",
        "started_at",
        "finished_at",
        "rows",
        "deals_opened",
        "events_appended",
        "rows_refused",
        "names_unresolved",
    )
    list_display_links = ("edition",)
    list_filter = ("register", "edition", "actor")
    search_fields = ("file_name", "=digest", "actor")
    # By start: an import that stopped before its end has no `finished_at`.
    ordering = ("-started_at",)
    list_per_page = 50
    fields = (
        "register",
        "edition",
        "file_name",
        "file_format",
        "digest",
        "actor",
        "started_at",
        "finished_at",
        "summary",
        "appended",
        "refused_rows",
        "deals",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[RegisterImport]:
        # The refused rows may be thousands; the list shows only how many (`counts`).
        return super().get_queryset(request).defer("refused")

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        upload = site.admin_view(partial(imports.upload_view, admin_site=site))
        return [path("upload/", upload, name="register_import_upload"), *super().get_urls()]

    # --- the list ------------------------------------------------------------------------------

    @admin.display(description="rows")
    def rows(self, obj: RegisterImport) -> Any:
        return obj.counts.get("rows", "—")

    @admin.display(description="deals opened")
    def deals_opened(self, obj: RegisterImport) -> Any:
        return obj.counts.get("deals_opened", "—")

    @admin.display(description="events appended")
    def events_appended(self, obj: RegisterImport) -> int:
        return sum((obj.counts.get("appended") or {}).values())

    @admin.display(description="rows refused")
    def rows_refused(self, obj: RegisterImport) -> int:
        return obj.refused_count

    @admin.display(description="names unresolved")
    def names_unresolved(self, obj: RegisterImport) -> int:
        return len(obj.unresolved)

    # --- one import ----------------------------------------------------------------------------

    @admin.display(description="summary")
    def summary(self, obj: RegisterImport) -> str:
        if obj.finished_at is None:
            return "Not finished: running, or stopped before its end (its counts are not known)."
        counts = obj.counts
        return (
            f"{counts.get('rows', 0)} rows, {counts.get('deals', 0)} deals: "
            f"{counts.get('deals_opened', 0)} opened, {counts.get('deals_changed', 0)} changed, "
            f"{counts.get('deals_unchanged', 0)} unchanged, "
            f"{counts.get('deals_refused', 0)} refused"
        )

    @admin.display(description="events appended")
    def appended(self, obj: RegisterImport) -> str:
        by_type = obj.counts.get("appended") or {}
        if not by_type:
            return "none"
        return ", ".join(f"{kind} {n}" for kind, n in sorted(by_type.items()))

    @admin.display(description="refused rows")
    def refused_rows(self, obj: RegisterImport) -> SafeString | str:
        if not obj.refused:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (row.get("line", ""), row.get("deal") or "—", row.get("reason", ""))
                for row in obj.refused
            ),
        )
        return format_html(
            '<table class="dt-refused"><thead><tr><th>line</th><th>deal</th><th>reason</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="deals it appended to")
    def deals(self, obj: RegisterImport) -> SafeString | str:
        touched = list(
            ImportedEvent.objects.filter(register_import=obj)
            .values("deal_id")
            .annotate(events=Count("id"))
            .order_by("deal_id")
        )
        if not touched:
            return "none"
        shown = touched[:DEALS_SHOWN]
        titles = dict(
            DealState.objects.filter(deal_id__in=[row["deal_id"] for row in shown]).values_list(
                "deal_id", "title"
            )
        )
        items = format_html_join(
            "",
            '<li><a href="{}">{}</a> ({} event{})</li>',
            (
                (
                    reverse("admin:deal_page", args=[row["deal_id"]]),
                    titles.get(row["deal_id"]) or row["deal_id"],
                    row["events"],
                    "" if row["events"] == 1 else "s",
                )
                for row in shown
            ),
        )
        more = len(touched) - len(shown)
        tail = format_html("<li>and {} more</li>", more) if more > 0 else ""
        return format_html('<ul class="dt-import-deals">{}{}</ul>', items, tail)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        found = self.get_object(request, object_id)
        extra = {**(extra_context or {})}
        if found is not None:
            extra["unresolved"] = unresolved_links(
                found.register, found.unresolved, may_map=self._may_map(request)
            )
        return super().change_view(request, object_id, form_url, extra)

    def _may_map(self, request: HttpRequest) -> bool:
        return self.admin_site._registry[RegisterName].has_add_permission(request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {
            "title": "Register imports",
            "can_import": can_record(request.user),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    # --- what may be done: nothing by hand ------------------------------------------------------

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raise PermissionDenied("An import is a record of work done: it is never deleted.")
