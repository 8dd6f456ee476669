"""Events in the admin: a list to filter and search, and nothing that could change one.

The database refuses UPDATE and DELETE of events anyway; the admin does not offer them, for
superusers too: no add, change or delete view (403), no bulk action.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .models import Event


class ReadOnlyEventAdmin(admin.ModelAdmin):
    list_display = (
        "position",
        "stream_id",
        "version",
        "type",
        "occurred_on",
        "actor",
        "recorded_at",
    )
    list_filter = ("type", "recorded_at", "actor")
    search_fields = ("type", "actor", "=event_id", "=stream__id")
    list_display_links = None
    list_per_page = 50
    ordering = ("-position",)
    actions = None
    show_full_result_count = False

    @admin.display(description="occurred")
    def occurred_on(self, obj: Event) -> str:
        if not obj.occurred:
            return "—"
        return f"{obj.occurred.get('date')} ({obj.occurred.get('precision')})"

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # One deal's events: the deal pages link here with ?stream__id__exact=<id>.
        return lookup == "stream__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def change_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raise PermissionDenied("Events are never changed; retract or correct them instead.")

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raise PermissionDenied("Events are never deleted; retract them instead.")

    def history_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raise PermissionDenied("Events have no edit history: they are never edited.")


admin.site.register(Event, ReadOnlyEventAdmin)
