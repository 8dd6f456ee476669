"""Organisations, the deals' reference data, edited in place with every change recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tracker.deals import history
from tracker.deals.models import Organisation
from tracker.deals.services import organisation_in_use

from ..access import can_record
from ..site import SeenByDealViewers


@admin.register(Organisation)
class OrganisationAdmin(SeenByDealViewers):
    list_display = ("name", "short_name", "kind", "country", "parent")
    list_filter = ("kind", "country")
    search_fields = ("name", "short_name")
    autocomplete_fields = ("parent",)
    readonly_fields = ("id",)
    fields = ("id", "name", "short_name", "kind", "country", "parent")

    # Editors and auditors may look organisations up (the register names' autocomplete asks
    # this admin, SeenByDealViewers). Editors add and edit them, as API.md lets them through
    # the API; deleting needs the model's permission, and only an organisation no recorded
    # fact names can go: events refer to organisations by id for good.

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_record(request.user) or super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_record(request.user) or super().has_change_permission(request, obj)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """Django's list of what a deletion takes, with each organisation a recorded fact
        names among the protected objects, as a foreign key's PROTECT would list it: the
        admin then refuses the deletion (the bulk action; the delete view says why first).
        Checked here, only when deleting, not in `has_delete_permission`, which every change
        page asks and which would read every event to show its Delete link."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        named = [f"{org}: named in recorded facts" for org in objs if organisation_in_use(org.pk)]
        return deleted, counts, perms_needed, [*protected, *named]

    # Every view that writes organisations runs inside `edited_by`, so the history triggers
    # record the admin user as the one who made the change (the change form, deletion, and the
    # change list's bulk delete action).
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return _as_user(
            request, super().changeform_view, request, object_id, form_url, extra_context
        )

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        organisation = self.get_object(request, unquote(object_id))
        if organisation is not None and organisation_in_use(organisation.pk):
            self.message_user(
                request,
                f"{organisation} is named in recorded facts, which keep referring to it by id, "
                "so it cannot be deleted. Correct its details instead.",
                messages.ERROR,
            )
            return HttpResponseRedirect(
                reverse("admin:deals_organisation_change", args=[organisation.pk])
            )
        return _as_user(request, super().delete_view, request, object_id, extra_context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return _as_user(request, super().changelist_view, request, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The admin's history page, with each recorded change of the row's values above the
        admin's own log (which only knows edits made here, and not their values)."""
        context = {**(extra_context or {}), "history_recorded": history.is_recorded()}
        if context["history_recorded"]:
            try:
                revisions = history.revisions(self.model._meta.pk.to_python(unquote(object_id)))
            except ValidationError:
                # A malformed id: the admin's own view answers it with its usual redirect.
                revisions = []
            parents = history.organisations_at(
                {r.snapshot.parent for r in revisions if r.snapshot.parent}, at=None
            )
            context["revisions"] = [
                {
                    "revision": revision,
                    "changes": [
                        (field.replace("_", " "), _shown(before, parents), _shown(after, parents))
                        for field, (before, after) in revision.changes.items()
                    ],
                }
                for revision in reversed(revisions)
            ]
        return super().history_view(request, object_id, context)


def _as_user(request: HttpRequest, view: Callable[..., HttpResponse], *args: Any) -> HttpResponse:
    with history.edited_by(request.user.get_username(), via="admin"):
        return view(*args)


def _shown(value: Any, parents: dict[Any, history.OrganisationSnapshot]) -> str:
    if value is None or value == "":
        return "—"
    if value in parents:
        return parents[value].label
    return str(value)
